package engine

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"

	containersapi "github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/errdefs"

	"github.com/isol8/isol8/driver"
	ctrd "github.com/isol8/isol8/driver/containerd"
	"github.com/isol8/isol8/image"
)

// Cleanup removes sandboxes no running process uses and never one a live
// process still holds. Before, it removed every isol8 container, a running
// server's pool included.
func TestCleanupSkipsSandboxesInUse(t *testing.T) { matrix(t, testCleanupSkipsSandboxesInUse) }

func testCleanupSkipsSandboxesInUse(t *testing.T, b backend) {
	e := b.engine(t, Options{Persist: true, PoolSize: noPool})
	mustHaveImage(t, e, "bash")
	inUse := run(t, e, Request{Runtime: "bash", Code: "true"}).ContainerID
	orphan := run(t, e, Request{Runtime: "bash", Code: "true"}).ContainerID

	if b == backendDocker {
		cleanupSkipsInUseDocker(t, e, inUse, orphan)
		return
	}
	// Make the second look like the sandbox of a process that crashed.
	ctx := withNS(t.Context())
	drv, err := ctrd.New(ctx, ctrd.Config{Address: e.opts.Containerd.Address})
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run after t.Context is cancelled and in reverse order: close
	// the connection after the kept sandbox is removed, on a live context.
	t.Cleanup(func() { drv.Close() })
	t.Cleanup(func() {
		if err := drv.Remove(context.WithoutCancel(ctx), inUse); err != nil {
			t.Errorf("remove the kept sandbox: %v", err)
		}
	})
	c, err := drv.Client().ContainerService().Get(ctx, orphan)
	if err != nil {
		t.Fatal(err)
	}
	c.Labels[driver.LabelPID] = "2147483646"
	if _, err := drv.Client().ContainerService().Update(ctx, containersapi.Container{ID: orphan, Labels: c.Labels}, "labels"); err != nil {
		t.Fatal(err)
	}

	rep, err := e.Cleanup(t.Context(), CleanupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !hasContainer(rep.InUse, inUse) || hasContainer(rep.Containers, inUse) {
		t.Errorf("sandbox %s of this live process not reported in use: %+v", inUse, rep)
	}
	if !hasContainer(rep.Containers, orphan) {
		t.Errorf("orphan %s not listed for removal: %+v", orphan, rep)
	}
	if _, err := drv.Client().ContainerService().Get(ctx, inUse); err != nil {
		t.Errorf("cleanup removed sandbox %s in use: %v", inUse, err)
	}
	if _, err := drv.Client().ContainerService().Get(ctx, orphan); !errdefs.IsNotFound(err) {
		t.Errorf("orphan %s still there: %v", orphan, err)
	}
	assertNothingLeft(t, e, orphan)
}

func hasContainer(list []ContainerInfo, id string) bool {
	for _, c := range list {
		if c.ID == id {
			return true
		}
	}
	return false
}

// cleanupSkipsInUseDocker is the Docker half of the cleanup test: Docker
// cannot relabel a container, so the crashed process's sandbox is forged
// with the kept one's labels but a pid no process has.
func cleanupSkipsInUseDocker(t *testing.T, e *Engine, inUse, kept string) {
	drv := testDockerDriver(t)
	ctx := context.WithoutCancel(t.Context())
	t.Cleanup(func() {
		for _, id := range []string{inUse, kept} {
			if err := drv.Remove(ctx, id); err != nil {
				t.Errorf("remove the kept sandbox: %v", err)
			}
		}
	})
	infos, err := drv.ListSandboxes(ctx, map[string]string{driver.LabelPID: strconv.Itoa(os.Getpid())})
	if err != nil || len(infos) == 0 {
		t.Fatalf("list: %v %v", infos, err)
	}
	labels := infos[0].Labels
	labels[driver.LabelPID] = "2147483646"
	orphan := forgeDockerSandbox(t, e, image.Name("bash"), labels)
	rep, err := e.Cleanup(t.Context(), CleanupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !hasContainer(rep.InUse, inUse) || hasContainer(rep.Containers, inUse) {
		t.Errorf("sandbox %s of this live process not reported in use: %+v", inUse, rep)
	}
	if !hasContainer(rep.Containers, orphan) {
		t.Errorf("orphan %s not listed for removal: %+v", orphan, rep)
	}
	left := sandboxIDsOf(t, e, nil)
	if !slices.Contains(left, inUse) {
		t.Errorf("cleanup removed sandbox %s in use", inUse)
	}
	if slices.Contains(left, orphan) {
		t.Errorf("orphan %s still there", orphan)
	}
	assertNothingLeft(t, e, orphan)
}

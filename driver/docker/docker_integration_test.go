package docker_test

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/isol8/isol8/driver"
	"github.com/isol8/isol8/driver/docker"
	"github.com/isol8/isol8/image"
	"github.com/isol8/isol8/internal/dockertest"
	"github.com/isol8/isol8/internal/testenv"
	"github.com/isol8/isol8/oci"
)

func TestMain(m *testing.M) { dockertest.Main(m) }

func newDriver(t *testing.T, images ...string) *docker.Driver {
	t.Helper()
	host := dockertest.MustHave(t, images...)
	drv, err := docker.New(t.Context(), docker.Config{Host: host})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drv.Close() })
	return drv
}

// TestFreshNetworkPath: a sandbox made with a fresh network namespace
// reports a path to it that is the init's namespace, not the host's, so the
// engine can enter it to serve on the sandbox's loopback.
func TestFreshNetworkPath(t *testing.T) {
	drv := newDriver(t, image.Name("bash"))
	spec, err := oci.New(oci.WithInit(testenv.InitBinary(t)), oci.WithNetwork(oci.NetworkNone, ""))
	if err != nil {
		t.Fatal(err)
	}
	id := "isol8-test-netns-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	sb, err := drv.Create(t.Context(), driver.CreateRequest{ID: id, Image: image.Name("bash"), Spec: spec,
		Labels: map[string]string{driver.LabelManaged: "true"}, Network: driver.FreshNetwork()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sb.Delete(context.WithoutCancel(t.Context())); err != nil {
			t.Error(err)
		}
	})
	stdio, err := sb.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ins, err := drv.Client().ContainerInspect(t.Context(), id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := "/proc/" + strconv.Itoa(ins.Container.State.Pid) + "/ns/net"
	if sb.NetNSPath() != want {
		t.Fatalf("NetNSPath %q, want %q", sb.NetNSPath(), want)
	}
	ns, err := os.Stat(sb.NetNSPath())
	if err != nil {
		t.Fatal(err)
	}
	host, err := os.Stat("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if os.SameFile(ns, host) {
		t.Fatal("the sandbox runs in the host's network namespace")
	}
	// The init is attached: it answers on stdout, and its stdout ends when
	// the container is removed.
	if err := sb.Delete(t.Context()); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdio.Stdout)
		for sc.Scan() {
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("stdout did not end after Delete")
	}
	if ids, err := drv.ListSandboxes(t.Context(), map[string]string{driver.LabelManaged: "true"}); err != nil || contains(ids, id) {
		t.Fatalf("sandbox left after Delete: %v %v", ids, err)
	}
}

func contains(infos []driver.SandboxInfo, id string) bool {
	for _, i := range infos {
		if i.ID == id {
			return true
		}
	}
	return false
}

// TestJoinNetworkRefused: Docker cannot join a namespace by path; the
// driver says so instead of running the sandbox elsewhere.
func TestJoinNetworkRefused(t *testing.T) {
	drv := newDriver(t, image.Name("bash"))
	spec, err := oci.New(oci.WithInit(testenv.InitBinary(t)), oci.WithNetwork(oci.NetworkFiltered, "/proc/self/ns/net"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = drv.Create(t.Context(), driver.CreateRequest{ID: "isol8-test-join", Image: image.Name("bash"), Spec: spec,
		Network: driver.JoinNetwork("/proc/self/ns/net")})
	if !errdefs.IsNotImplemented(err) {
		t.Fatalf("err %v, want not implemented", err)
	}
}

// TestImagesLabelledAndRemoved: an imported image carries the labels in
// Docker, is listed by them, and RemoveImage removes it.
func TestImagesLabelledAndRemoved(t *testing.T) {
	drv := newDriver(t, image.Name("bash"))
	info, err := drv.ImageInfo(t.Context(), image.Name("bash"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Labels[image.LabelManaged] != "true" || info.Labels[image.LabelRuntime] != "bash" || len(info.Layers) == 0 || len(info.ID) != 64 {
		t.Fatalf("image info %+v", info)
	}
	names, err := drv.ListImages(t.Context(), map[string]string{image.LabelManaged: "true", image.LabelRuntime: "bash"})
	if err != nil || len(names) != 1 || names[0] != image.Name("bash") {
		t.Fatalf("listed %v %v", names, err)
	}
	// A second name for the same image, removed again.
	tag := "isol8-test:remove-me"
	if _, err := drv.Client().ImageTag(t.Context(), client.ImageTagOptions{Source: image.Name("bash"), Target: tag}); err != nil {
		t.Fatal(err)
	}
	if err := drv.RemoveImage(t.Context(), tag); err != nil {
		t.Fatal(err)
	}
	if _, err := drv.ImageInfo(t.Context(), tag); !errdefs.IsNotFound(err) {
		t.Fatalf("after remove: %v", err)
	}
	if err := drv.RemoveImage(t.Context(), tag); !errdefs.IsNotFound(err) {
		t.Fatalf("removing a missing image: %v, want not found", err)
	}
	if _, err := drv.ImageInfo(t.Context(), image.Name("bash")); err != nil {
		t.Fatalf("the original went with the tag: %v", err)
	}
	if !strings.HasPrefix(drv.Host(), "unix://") {
		t.Fatalf("host %q", drv.Host())
	}
}

// TestForeignContainerNotListed: a container someone ran from an isol8
// image inherits the image's isol8 labels; it is not a sandbox, so cleanup
// (which removes what ListSandboxes returns) never sees it.
func TestForeignContainerNotListed(t *testing.T) {
	drv := newDriver(t, image.Name("bash"))
	name := "isol8-test-foreign-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if _, err := drv.Client().ContainerCreate(t.Context(), client.ContainerCreateOptions{Name: name, Image: image.Name("bash"), Config: &container.Config{Cmd: []string{"true"}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = drv.Remove(context.WithoutCancel(t.Context()), name) })
	ins, err := drv.Client().ContainerInspect(t.Context(), name, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ins.Container.Config.Labels[driver.LabelManaged] != "true" {
		t.Fatalf("precondition: Docker no longer copies image labels: %v", ins.Container.Config.Labels)
	}
	infos, err := drv.ListSandboxes(t.Context(), map[string]string{driver.LabelManaged: "true"})
	if err != nil {
		t.Fatal(err)
	}
	if contains(infos, name) {
		t.Fatalf("a container isol8 did not make is listed as a sandbox")
	}
}

// TestExportLayers: the layers a saved runtime image yields are its diff
// IDs, base first, each a complete blob in the layout.
func TestExportLayers(t *testing.T) {
	drv := newDriver(t, image.Name("bash"))
	info, err := drv.ImageInfo(t.Context(), image.Name("bash"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Size <= 0 {
		t.Errorf("image info %+v: no size", info)
	}
	dir := t.TempDir()
	descs, err := drv.ExportLayers(t.Context(), image.Name("bash"), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(descs) == 0 || len(descs) != len(info.Layers) {
		t.Fatalf("exported %d layers, the image has %v", len(descs), info.Layers)
	}
	for i, d := range descs {
		if d.Digest.String() != info.Layers[i] {
			t.Errorf("layer %d: %s, want diff ID %s", i, d.Digest, info.Layers[i])
		}
		st, err := os.Stat(filepath.Join(dir, "blobs", "sha256", d.Digest.Encoded()))
		if err != nil || st.Size() != d.Size {
			t.Errorf("blob of layer %d: %v, %v (want %d bytes)", i, st, err, d.Size)
		}
	}
	if _, err := drv.ExportLayers(t.Context(), "isol8-no-such-image:x", t.TempDir()); !errdefs.IsNotFound(err) {
		t.Errorf("missing image: %v, want not found", err)
	}
}

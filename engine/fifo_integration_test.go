package engine

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	ctrd "github.com/isol8/isol8/driver/containerd"
)

// A sandbox's FIFOs live where the driver says, and a process that did not
// create the sandbox removes them with it. Before, they were made in a
// random directory while removal (and this test) looked at
// <dir>/<id>-stdin, so the test could not fail and every sandbox removed by
// `isol8 cleanup` or left by a crash kept its FIFO directory.
func TestFIFOsRemovedWithSandbox(t *testing.T) {
	e := newTestEngine(t, Options{Persist: true, PoolSize: noPool})
	mustHaveImage(t, e, "bash")
	res := run(t, e, Request{Runtime: "bash", Code: "true"})
	id := res.ContainerID
	dir := ctrd.FIFOSetDir(id)
	for _, s := range []string{"-stdin", "-stdout", "-stderr"} {
		st, err := os.Stat(filepath.Join(dir, id+s))
		if err != nil || st.Mode()&os.ModeNamedPipe == 0 {
			t.Fatalf("kept sandbox has no FIFO %s%s in %s: %v", id, s, dir, err)
		}
	}

	// Another process (a fresh driver connection) removes the sandbox.
	drv, err := ctrd.New(t.Context(), ctrd.Config{Address: e.opts.Containerd.Address})
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	if err := drv.Remove(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, e, id)
}

// PruneFIFOs removes FIFO directories of containers that no longer exist,
// in today's layout and in the random-directory layout of earlier versions,
// and keeps those of live containers.
func TestPruneFIFOs(t *testing.T) {
	e := newTestEngine(t, Options{Persist: true, PoolSize: noPool})
	mustHaveImage(t, e, "bash")
	live := run(t, e, Request{Runtime: "bash", Code: "true"}).ContainerID
	drv, err := ctrd.New(t.Context(), ctrd.Config{Address: e.opts.Containerd.Address})
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run after t.Context is cancelled and in reverse order.
	t.Cleanup(func() { drv.Close() })
	t.Cleanup(func() {
		if err := drv.Remove(context.WithoutCancel(t.Context()), live); err != nil {
			t.Errorf("remove the kept sandbox: %v", err)
		}
	})

	root := filepath.Dir(ctrd.FIFOSetDir(live))
	orphans := map[string]string{
		"isol8-0000000000dead01": filepath.Join(root, "isol8-0000000000dead01"), // current layout
		"isol8-0000000000dead02": filepath.Join(root, "1234567890"),             // earlier, random name
	}
	for id, dir := range orphans {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mkfifo(filepath.Join(dir, id+"-stdin"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	n, err := drv.Prune(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n < len(orphans) {
		t.Errorf("PruneFIFOs removed %d directories, want at least %d", n, len(orphans))
	}
	for id, dir := range orphans {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("orphan FIFO directory of %s left: %v", id, err)
		}
	}
	if _, err := os.Stat(filepath.Join(ctrd.FIFOSetDir(live), live+"-stdin")); err != nil {
		t.Errorf("PruneFIFOs removed the FIFOs of live sandbox %s: %v", live, err)
	}
}

// FIFO directories and netns pins are shared by all containerd namespaces
// of the daemon, so a driver working in another namespace (a test's own, or
// another tool's) must not take a live sandbox's FIFOs for an orphan.
// Before, Prune looked the container up only in its own namespace and
// removed the FIFOs of every sandbox outside it; the next exec into such a
// sandbox failed with "failed to open stdin fifo".
func TestPruneKeepsOtherNamespacesFIFOs(t *testing.T) {
	e := newTestEngine(t, Options{Persist: true, PoolSize: noPool})
	mustHaveImage(t, e, "bash")
	live := run(t, e, Request{Runtime: "bash", Code: "true"}).ContainerID
	own, err := ctrd.New(t.Context(), ctrd.Config{Address: e.opts.Containerd.Address})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { own.Close() })
	t.Cleanup(func() {
		if err := own.Remove(context.WithoutCancel(t.Context()), live); err != nil {
			t.Errorf("remove the kept sandbox: %v", err)
		}
	})
	other, err := ctrd.New(t.Context(), ctrd.Config{Address: e.opts.Containerd.Address, Namespace: "isol8-test-prune-other"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	if _, err := other.Prune(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(ctrd.FIFOSetDir(live), live+"-stdin")); err != nil {
		t.Errorf("a driver in another namespace removed the FIFOs of live sandbox %s: %v", live, err)
	}
}

package engine

import (
	"strings"

	"github.com/containerd/errdefs"
	"testing"
)

// TestWritableRootBounded: a writable root filesystem used to be a
// read-write snapshot on the host's disk, so a sandbox with 128 MB of memory
// wrote 1.5 GB there. Its writes now land in a tmpfs the size of the memory
// limit, charged to the sandbox's memory cgroup.
func TestWritableRootBounded(t *testing.T) { matrix(t, testWritableRootBounded) }

func testWritableRootBounded(t *testing.T, b backend) {
	rw := false
	e := b.engine(t, Options{MemoryLimit: "128m", ReadonlyRootFs: &rw, PoolSize: noPool})
	mustHaveImage(t, e, "bash")
	if b == backendDocker {
		// Docker bounds a writable layer only with a storage quota (overlay2
		// on xfs with pquota); without one the sandbox is refused, never
		// left to write to the daemon's disk.
		// With a quota, the run below must stay within it.
		_, err := e.Execute(t.Context(), Request{Runtime: "bash", Code: "true"})
		if err != nil {
			if !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), "size quota") {
				t.Fatalf("writable root on docker without quota support: %v, want a refusal", err)
			}
			return
		}
	}
	res := run(t, e, Request{Runtime: "bash", TimeoutMs: 60000, Code: `
touch /var/tmp/ok && echo writable
dd if=/dev/zero of=/var/tmp/big bs=1M count=300 2>/dev/null && echo wrote-all
echo done`})
	t.Logf("stdout %q stderr %q oom %v", res.Stdout, res.Stderr, res.OOMKilled)
	if !strings.Contains(res.Stdout, "writable") {
		t.Fatalf("root not writable: %q %q", res.Stdout, res.Stderr)
	}
	if strings.Contains(res.Stdout, "wrote-all") {
		t.Fatalf("300 MB written to the root filesystem of a 128 MB sandbox")
	}
	assertNothingLeft(t, e, res.ContainerID)
}

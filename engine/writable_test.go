package engine

import (
	"strings"
	"testing"
)

// TestWritableRootBounded: a writable root filesystem used to be a
// read-write snapshot on the host's disk, so a sandbox with 128 MB of memory
// wrote 1.5 GB there. Its writes now land in a tmpfs the size of the memory
// limit, charged to the sandbox's memory cgroup.
func TestWritableRootBounded(t *testing.T) {
	rw := false
	e := newTestEngine(t, Options{MemoryLimit: "128m", ReadonlyRootFs: &rw, PoolSize: noPool})
	mustHaveImage(t, e, "bash")
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

//go:build linux

package userns

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestHolderOwnedBySandboxID: the namespace is owned by the sandbox's host
// id (so the kernel charges per-user limits to it, not to root) and maps
// container ids 0..size-1 onto the range.
func TestHolderOwnedBySandboxID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	tools, err := LookTools()
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHolder(t.Context(), tools, 3_000_000, 65536)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	f, err := os.Open(h.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var owner uint32
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.NS_GET_OWNER_UID, uintptr(unsafe.Pointer(&owner))); errno != 0 {
		t.Fatalf("NS_GET_OWNER_UID: %v", errno)
	}
	if owner != 3_000_000 {
		t.Fatalf("namespace owner %d, want 3000000", owner)
	}
	pidDir := strings.TrimSuffix(h.Path(), "/ns/user")
	for _, m := range []string{"uid_map", "gid_map"} {
		data, err := os.ReadFile(pidDir + "/" + m)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Fields(string(data)); strings.Join(got, " ") != "0 3000000 65536" {
			t.Fatalf("%s = %q", m, data)
		}
	}
	h.Close()
	if _, err := os.Stat(pidDir); err == nil {
		t.Fatalf("holder %s still running after Close", pidDir)
	}
}

// BenchmarkIdentity is what a user namespace adds to a sandbox's creation:
// allocate a slot, make the namespace, end the holder, free the slot.
func BenchmarkIdentity(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	tools, err := LookTools()
	if err != nil {
		b.Fatal(err)
	}
	a, err := New(Config{Base: 3_500_000_000, Count: 4, Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		l, err := a.Allocate("bench")
		if err != nil {
			b.Fatal(err)
		}
		h, err := NewHolder(b.Context(), tools, l.HostID, l.Size)
		if err != nil {
			b.Fatal(err)
		}
		h.Close()
		l.Release()
	}
}

// TestHolderFailureSaysWhy: when the namespace cannot be made, the error
// carries what the helper printed.
func TestHolderFailureSaysWhy(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip(err)
	}
	// The helper runs as the sandbox's host id: its directory must be
	// reachable by everyone (t.TempDir's parent is not).
	dir, err := os.MkdirTemp("", "userns-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	script := filepath.Join(dir, "unshare")
	if err := os.WriteFile(script, []byte("#!"+sh+"\necho 'unshare: unshare failed: Operation not permitted' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(script), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = NewHolder(t.Context(), Tools{Unshare: script, Cat: "/bin/cat"}, 3_000_000, 65536)
	if err == nil || !strings.Contains(err.Error(), "Operation not permitted") {
		t.Fatalf("got %v, want the helper's message", err)
	}
}

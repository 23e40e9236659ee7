// Package testenv declares what integration tests need (root, containerd,
// runtime images) and skips with the cause and the fix when it is missing.
// With ISOL8_TEST_STRICT=1 (set by `make test`) a missing requirement fails
// the test instead, so CI can never pass by skipping.
//
// Integration tests are opt-in: under `go test -short` every MustHave* skips
// at once, whatever the machine has, so a unit run (even as root on a host
// with containerd) never starts sandboxes, builds images or starts daemons.
package testenv

import (
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Strict reports whether missing requirements fail instead of skip.
func Strict() bool { return os.Getenv("ISOL8_TEST_STRICT") == "1" }

func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if Strict() {
		t.Fatalf("requirement missing (ISOL8_TEST_STRICT=1): "+format, args...)
	}
	t.Skipf(format+" (run `make test` to prepare the environment)", args...)
}

// Integration skips the test under `go test -short`. Every MustHave*
// calls it; call it directly in an integration test that needs nothing else.
func Integration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped with -short (run `make test` for the whole suite)")
	}
}

// MustHaveRoot skips unless running as root.
func MustHaveRoot(t testing.TB) {
	t.Helper()
	Integration(t)
	if os.Geteuid() != 0 {
		missing(t, "needs root")
	}
}

// MustHaveCommand skips unless name is on PATH.
func MustHaveCommand(t testing.TB, name string) {
	t.Helper()
	Integration(t)
	if _, err := exec.LookPath(name); err != nil {
		missing(t, "needs %s on PATH", name)
	}
}

// ContainerdAddress is the containerd socket integration tests use, found
// the way isol8 finds it: ISOL8_TEST_CONTAINERD_ADDRESS, CONTAINERD_ADDRESS,
// the system socket if something listens there, else the private containerd
// that isol8 (and so `make test`) starts.
func ContainerdAddress() string {
	for _, env := range []string{"ISOL8_TEST_CONTAINERD_ADDRESS", "CONTAINERD_ADDRESS"} {
		if a := os.Getenv(env); a != "" {
			return a
		}
	}
	if listening("/run/containerd/containerd.sock") {
		return "/run/containerd/containerd.sock"
	}
	return "/run/isol8/containerd/containerd.sock"
}

func listening(addr string) bool {
	c, err := net.DialTimeout("unix", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// MustHaveContainerd skips unless root and a containerd socket answers.
func MustHaveContainerd(t testing.TB) string {
	t.Helper()
	Integration(t)
	MustHaveRoot(t)
	addr := ContainerdAddress()
	if !listening(addr) {
		missing(t, "needs containerd listening at %s", addr)
	}
	return addr
}

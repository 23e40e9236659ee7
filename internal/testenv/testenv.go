// Package testenv declares what integration tests need (root, containerd,
// runtime images) and skips with the cause and the fix when it is missing.
// With ISOL8_TEST_STRICT=1 (set by `make test`) a missing requirement fails
// the test instead, so CI can never pass by skipping.
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

// MustHaveRoot skips unless running as root.
func MustHaveRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "needs root")
	}
}

// MustHaveCommand skips unless name is on PATH.
func MustHaveCommand(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		missing(t, "needs %s on PATH", name)
	}
}

// ContainerdAddress is the containerd socket integration tests use:
// ISOL8_TEST_CONTAINERD_ADDRESS, else the private one `make test` starts.
func ContainerdAddress() string {
	if a := os.Getenv("ISOL8_TEST_CONTAINERD_ADDRESS"); a != "" {
		return a
	}
	return "/run/isol8/containerd/containerd.sock"
}

// MustHaveContainerd skips unless root and a containerd socket answers.
func MustHaveContainerd(t testing.TB) string {
	t.Helper()
	MustHaveRoot(t)
	addr := ContainerdAddress()
	c, err := net.DialTimeout("unix", addr, 2*time.Second)
	if err != nil {
		missing(t, "needs containerd listening at %s: %v", addr, err)
		return addr
	}
	c.Close()
	return addr
}

//go:build !linux

package seccomp

import (
	"fmt"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// load needs moby's profile loader, which is Linux-only (it reads the
// running kernel's version for minKernel).
func load([]byte) (*specs.LinuxSeccomp, error) {
	return nil, fmt.Errorf("loading Docker-format seccomp profiles needs Linux: %w", errdefs.ErrNotImplemented)
}

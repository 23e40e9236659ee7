//go:build !linux || !cgo

package seccomp

import (
	"fmt"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// validate needs libseccomp, which needs Linux and cgo.
func validate(*specs.LinuxSeccomp) error {
	return fmt.Errorf("validating seccomp profiles needs Linux and cgo (libseccomp): %w", errdefs.ErrNotImplemented)
}

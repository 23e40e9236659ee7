//go:build !linux

package seccomp

import (
	"fmt"

	"github.com/containerd/errdefs"
)

// hostKernel has no Linux kernel to report off Linux.
func hostKernel() (kernelVersion, error) {
	return kernelVersion{}, fmt.Errorf("kernel version for seccomp minKernel: %w", errdefs.ErrNotImplemented)
}

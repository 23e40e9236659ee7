//go:build !linux

package containerd

import (
	"errors"

	"github.com/containerd/containerd/v2/core/mount"
)

// A writable root on a tmpfs needs Linux mounts; containerd sandboxes run
// on Linux only.
func tmpfsRootFS(id string, view []mount.Mount, size int64) ([]mount.Mount, error) {
	return nil, errors.New("writable root: needs Linux")
}

func removeUpper(id string) error { return nil }

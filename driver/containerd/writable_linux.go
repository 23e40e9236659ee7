package containerd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/containerd/v2/core/mount"
	"golang.org/x/sys/unix"
)

// tmpfsRootFS mounts the sandbox's tmpfs and returns the root filesystem
// mounts: the image's layers (from a read-only view snapshot) as lower
// directories of an overlay whose upper directory is on the tmpfs.
func tmpfsRootFS(id string, view []mount.Mount, size int64) (_ []mount.Mount, retErr error) {
	lower, err := lowerDirs(view)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(upperDir, id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("writable root of %s: %w", id, err)
	}
	opts := "size=" + strconv.FormatInt(size, 10) + ",mode=0700"
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		_ = os.Remove(dir)
		return nil, fmt.Errorf("writable root of %s: mount tmpfs: %w", id, err)
	}
	defer func() {
		if retErr != nil {
			removeUpper(id)
		}
	}()
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, fmt.Errorf("writable root of %s: %w", id, err)
		}
	}
	return []mount.Mount{{
		Type:   "overlay",
		Source: "overlay",
		Options: []string{
			"index=off",
			"lowerdir=" + strings.Join(lower, ":"),
			"upperdir=" + upper,
			"workdir=" + work,
		},
	}}, nil
}

// removeUpper unmounts and removes a sandbox's tmpfs, if it has one.
func removeUpper(id string) error {
	dir := filepath.Join(upperDir, id)
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount writable root of %s: %w", id, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove writable root of %s: %w", id, err)
	}
	return nil
}

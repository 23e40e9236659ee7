package containerd

import (
	"context"
	"fmt"
	"strings"

	"github.com/containerd/containerd/v2/core/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// upperDir holds, per sandbox with a writable root filesystem, a tmpfs for
// the overlay's upper and work directories.
const upperDir = "/run/isol8/upper"

// defaultUpperSize bounds the writable layer of a spec without a memory
// limit.
const defaultUpperSize = 512 << 20

// A writable root filesystem must not write to the host's disk: a
// read-write snapshot would let a sandbox with 128 MB of memory fill the
// disk. Its root is instead an overlay of the image's read-only layers under
// an upper directory on a tmpfs a little smaller than the sandbox's memory
// limit (upperSize). The
// tmpfs pages are charged to the memory cgroup of the process that writes
// them, so root writes count against the sandbox's memory like /sandbox.

// writableRoot reports whether the spec asks for a writable root.
func writableRoot(spec *specs.Spec) bool {
	return spec.Root != nil && !spec.Root.Readonly
}

// upperSize is the tmpfs size for a spec: its memory limit less a reserve
// (a quarter, between 8 and 64 MiB). tmpfs pages cannot be reclaimed, and
// killing the writer frees none of them: a layer as large as the memory
// limit could fill the cgroup to the brim, and the next allocation would
// OOM-kill the init agent, the only process left. With the reserve the
// writer gets ENOSPC first and the agent can still report.
func upperSize(spec *specs.Spec) int64 {
	if spec.Linux != nil && spec.Linux.Resources != nil && spec.Linux.Resources.Memory != nil &&
		spec.Linux.Resources.Memory.Limit != nil && *spec.Linux.Resources.Memory.Limit > 0 {
		limit := *spec.Linux.Resources.Memory.Limit
		reserve := min(max(limit/4, 8<<20), 64<<20)
		return max(limit-reserve, limit/2)
	}
	return defaultUpperSize
}

// lowerDirs turns the mounts of a read-only view snapshot into overlay
// lower directories, topmost first: the overlayfs snapshotter gives a bind
// mount for a single layer and an overlay with only lowerdir for several.
func lowerDirs(view []mount.Mount) ([]string, error) {
	if len(view) != 1 {
		return nil, fmt.Errorf("writable root: unexpected view with %d mounts", len(view))
	}
	m := view[0]
	switch m.Type {
	case "bind", "rbind":
		return []string{m.Source}, nil
	case "overlay":
		for _, o := range m.Options {
			if v, ok := strings.CutPrefix(o, "lowerdir="); ok {
				return strings.Split(v, ":"), nil
			}
		}
	}
	return nil, fmt.Errorf("writable root: unexpected view mount of type %q", m.Type)
}

// tmpfsRoot makes the read-only view snapshot key (which the container
// references, so it lives as long as the container) and the tmpfs overlay
// on it. The shim mounts the view and then the overlay on top of it at the
// rootfs; the overlay is what the container sees.
func (d *Driver) tmpfsRoot(ctx context.Context, id, key, chain string, size int64) ([]mount.Mount, error) {
	view, err := d.client.SnapshotService(snapshotter).View(ctx, key, chain)
	if err != nil {
		return nil, fmt.Errorf("view snapshot for %s: %w", id, err)
	}
	return tmpfsRootFS(id, view, size)
}

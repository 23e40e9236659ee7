package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/opencontainers/image-spec/identity"
	"golang.org/x/sys/unix"
)

const snapshotter = "overlayfs"

// cleanups is a stack of undo steps, run last-in first-out.
type cleanups []func() error

func (c *cleanups) add(f func() error) { *c = append(*c, f) }

// run runs every step (even after a failure) and empties the stack.
func (c *cleanups) run() error {
	var errs []error
	for i := len(*c) - 1; i >= 0; i-- {
		errs = append(errs, (*c)[i]())
	}
	*c = nil
	return errors.Join(errs...)
}

// cleanupCtx outlives a cancelled ctx (SIGINT) so undo steps still reach
// containerd.
func cleanupCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
}

// mountImage mounts a read-only view of image's unpacked rootfs at dir,
// under a lease, and registers the unmount, view removal and lease release
// on cl.
func mountImage(ctx context.Context, c *client.Client, image, key, dir string, cl *cleanups) error {
	img, err := c.GetImage(ctx, image)
	if err != nil {
		return fmt.Errorf("image %s: %w (run `isol8 setup`)", image, err)
	}
	diffIDs, err := img.RootFS(ctx)
	if err != nil {
		return fmt.Errorf("image %s rootfs: %w", image, err)
	}
	if ok, err := img.IsUnpacked(ctx, snapshotter); err != nil {
		return fmt.Errorf("image %s: %w", image, err)
	} else if !ok {
		if err := img.Unpack(ctx, snapshotter); err != nil {
			return fmt.Errorf("unpack image %s: %w", image, err)
		}
	}
	ctx, release, err := c.WithLease(ctx)
	if err != nil {
		return fmt.Errorf("lease for %s: %w", key, err)
	}
	cl.add(func() error {
		ctx, cancel := cleanupCtx(ctx)
		defer cancel()
		if err := release(ctx); err != nil {
			return fmt.Errorf("release lease for %s: %w", key, err)
		}
		return nil
	})
	sn := c.SnapshotService(snapshotter)
	mounts, err := sn.View(ctx, key, identity.ChainID(diffIDs).String())
	if err != nil {
		return fmt.Errorf("view snapshot %s of %s: %w", key, image, err)
	}
	cl.add(func() error {
		ctx, cancel := cleanupCtx(ctx)
		defer cancel()
		if err := sn.Remove(ctx, key); err != nil {
			return fmt.Errorf("remove snapshot %s: %w", key, err)
		}
		return nil
	})
	return mountAt(mounts, dir, cl)
}

// mountAt mounts mounts on the existing directory dir and registers the
// unmount on cl.
func mountAt(mounts []mount.Mount, dir string, cl *cleanups) error {
	if err := mount.All(mounts, dir); err != nil {
		return fmt.Errorf("mount %s on %s: %w", mounts[0].Type, dir, err)
	}
	cl.add(func() error {
		if err := mount.UnmountAll(dir, 0); err != nil {
			return fmt.Errorf("unmount %s: %w", dir, err)
		}
		return nil
	})
	return nil
}

// mountChrootFS gives a chroot at rootfs what runc gives the container and
// the interpreters need: /proc, a /dev with the usual character devices,
// and writable /sandbox (owned by the sandbox user) and /tmp tmpfs. Nothing
// of the host's is bound in, so undoing it can never touch host files.
func mountChrootFS(rootfs string, cl *cleanups) error {
	for _, m := range []struct {
		dir string
		m   mount.Mount
	}{
		{"proc", mount.Mount{Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}}},
		{"dev", mount.Mount{Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755", "size=64k"}}},
		{"sandbox", mount.Mount{Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "uid=100", "gid=101", "mode=755", "size=64m"}}},
		{"tmp", mount.Mount{Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "noexec", "mode=1777", "size=64m"}}},
	} {
		dir := filepath.Join(rootfs, m.dir)
		if err := mountAt([]mount.Mount{m.m}, dir, cl); err != nil {
			return err
		}
	}
	return makeDevices(filepath.Join(rootfs, "dev"))
}

// makeDevices creates the character devices and links runc puts in a
// container's /dev.
func makeDevices(dev string) error {
	for name, d := range map[string][2]uint32{
		"null": {1, 3}, "zero": {1, 5}, "full": {1, 7}, "random": {1, 8}, "urandom": {1, 9}, "tty": {5, 0},
	} {
		p := filepath.Join(dev, name)
		if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(d[0], d[1]))); err != nil {
			return fmt.Errorf("create /dev/%s: %w", name, err)
		}
		if err := os.Chmod(p, 0o666); err != nil { // past the umask
			return fmt.Errorf("chmod /dev/%s: %w", name, err)
		}
	}
	for name, target := range map[string]string{
		"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
	} {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return fmt.Errorf("create /dev/%s: %w", name, err)
		}
	}
	return nil
}

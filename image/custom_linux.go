//go:build linux

package image

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/isol8/isol8/api"
)

// installRoots maps where a sandbox's installs land (relative to
// /sandbox) to where they go in a custom image: directories the runtimes
// search without any per-image environment.
func installRoots(dir, runtime string) (map[string]string, error) {
	switch runtime {
	case "python":
		m := map[string]string{".local/bin": "usr/local/bin"}
		entries, _ := os.ReadDir(filepath.Join(dir, ".local/lib"))
		for _, e := range entries {
			if ver := e.Name(); strings.HasPrefix(ver, "python3") && !strings.ContainsAny(ver, "/\\") {
				m[".local/lib/"+ver+"/site-packages"] = "usr/local/lib/" + ver + "/dist-packages"
			}
		}
		return m, nil
	case "node":
		return map[string]string{
			"node_modules":                 "usr/local/lib/node_modules",
			".npm-global/lib/node_modules": "usr/local/lib/node_modules",
			".npm-global/bin":              "usr/local/bin",
		}, nil
	}
	return nil, api.NotImplementedf("installing %s packages into images is not supported yet (python and node are)", runtime)
}

// writeInstallLayer writes the installs found in dir as a layer at their
// image locations (installRoots): owned by root, without set-id bits,
// regular files, directories and symbolic links only. Parent directories
// come first, with the usual 0755.
func writeInstallLayer(w io.Writer, dir, runtime string) error {
	roots, err := installRoots(dir, runtime)
	if err != nil {
		return err
	}
	srcs := make([]string, 0, len(roots))
	for s := range roots {
		srcs = append(srcs, s)
	}
	slices.Sort(srcs)
	tw := tar.NewWriter(w)
	written := map[string]bool{}
	mtime := time.Unix(0, 0)
	dirEntry := func(name string, mode int64, mt time.Time) error {
		if written[name] {
			return nil
		}
		written[name] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, ModTime: mt, Format: tar.FormatPAX})
	}
	for _, src := range srcs {
		root := filepath.Join(dir, src)
		if !realDirs(dir, src) {
			continue // missing, or a symlink the sandbox planted
		}
		dst := roots[src]
		parts := strings.Split(dst, "/")
		for i := 1; i < len(parts); i++ {
			if err := dirEntry(strings.Join(parts[:i], "/"), 0o755, mtime); err != nil {
				return err
			}
		}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			name := dst
			if rel != "." {
				name = dst + "/" + filepath.ToSlash(rel)
			}
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err != nil {
				return fmt.Errorf("lstat %s: %w", p, err)
			}
			mt := time.Unix(st.Mtim.Sec, 0)
			mode := int64(st.Mode & 0o777)
			switch st.Mode & unix.S_IFMT {
			case unix.S_IFDIR:
				return dirEntry(name, mode|0o755, mt)
			case unix.S_IFLNK:
				target, err := os.Readlink(p)
				if err != nil {
					return err
				}
				return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: mt, Format: tar.FormatPAX})
			case unix.S_IFREG:
				if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: st.Size, Mode: mode | 0o444, ModTime: mt, Format: tar.FormatPAX}); err != nil {
					return err
				}
				f, err := os.Open(p)
				if err != nil {
					return err
				}
				defer f.Close()
				n, err := io.Copy(tw, f)
				if err != nil {
					return err
				}
				if n != st.Size {
					return fmt.Errorf("%s changed size while being archived", p)
				}
				return nil
			}
			return nil // devices, fifos, sockets: nothing an install needs
		})
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// realDirs reports whether every component of rel below dir is a real
// directory, not a symbolic link: the build sandbox wrote dir, and a link
// there must not make the build read the host's files.
func realDirs(dir, rel string) bool {
	p := dir
	for _, part := range strings.Split(rel, "/") {
		p = filepath.Join(p, part)
		st, err := os.Lstat(p)
		if err != nil || !st.IsDir() {
			return false
		}
	}
	return true
}

// mountScratch mounts a tmpfs of size bytes on dir (which must exist): a
// build sandbox writes there, bounded like its usual /sandbox.
func mountScratch(dir string, size int64) (func() error, error) {
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size="+strconv.FormatInt(size, 10)); err != nil {
		return nil, fmt.Errorf("mount build directory: %w", err)
	}
	return func() error {
		if err := unix.Unmount(dir, 0); err != nil {
			return unix.Unmount(dir, unix.MNT_DETACH)
		}
		return nil
	}, nil
}

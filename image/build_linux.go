package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// buildBaseRootfs runs mmdebstrap into bb.dir/rootfs.new, adds the isol8
// parts (sandbox user, /sandbox, /.isol8-init) and cleans it, then puts it
// in place of bb.dir/rootfs.
func buildBaseRootfs(ctx context.Context, bb baseBuild) (retErr error) {
	mmdebstrap, err := exec.LookPath("mmdebstrap")
	if err != nil {
		return fmt.Errorf("mmdebstrap not found (apt-get install mmdebstrap): %w", err)
	}
	for _, h := range bb.recipe.HookDirs {
		if _, err := os.Stat(h); err != nil {
			return fmt.Errorf("mmdebstrap hook dir: %w", err)
		}
	}
	for _, d := range []string{bb.dir, bb.debCache, filepath.Dir(bb.logFile)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	tmp := filepath.Join(bb.dir, "rootfs.new")
	if err := removeTree(tmp); err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			if err := removeTree(tmp); err != nil {
				retErr = errors.Join(retErr, err)
			}
		}
	}()
	if err := os.WriteFile(bb.logFile, nil, 0o644); err != nil { // one build per log
		return err
	}
	// The host's own sources for the suite; none (another distribution or
	// release) leaves mmdebstrap its default mirror.
	mirrors := hostAptSources("/", bb.recipe.Suite)
	cmd := exec.CommandContext(ctx, mmdebstrap, mmdebstrapArgs(bb.recipe, bb.debCache, tmp, mirrors)...)
	if err := runLogged(cmd, "mmdebstrap", bb.logFile); err != nil {
		return err
	}
	if err := finalizeBase(tmp, bb.recipe); err != nil {
		return fmt.Errorf("finish base rootfs: %w", err)
	}
	root := filepath.Join(bb.dir, "rootfs")
	if err := os.Remove(filepath.Join(bb.dir, baseLayerFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := removeTree(root); err != nil {
		return err
	}
	return os.Rename(tmp, root)
}

// finalizeBase adds what isol8 needs to a fresh mmdebstrap tree and removes
// what must not be in a layer.
func finalizeBase(root string, r baseRecipe) error {
	for _, file := range []string{"etc/group", "etc/gshadow", "etc/passwd", "etc/shadow"} {
		a := baseAccounts(r)[file]
		name := filepath.Join(root, file)
		data, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		out, err := addAccountLine(data, a)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if err := os.WriteFile(name, out, 0); err != nil { // keeps the existing mode
			return err
		}
	}
	home := filepath.Join(root, r.Home)
	if err := os.MkdirAll(home, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(home, 0o755); err != nil {
		return err
	}
	if err := os.Chown(home, r.UID, r.GID); err != nil {
		return err
	}
	tmp := filepath.Join(root, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o777|fs.ModeSticky); err != nil {
		return err
	}
	// Mountpoints the runtime may bind over: they must exist in a read-only
	// rootfs. mmdebstrap leaves the host's resolv.conf and hostname behind.
	for name, content := range map[string]string{
		"etc/resolv.conf": "",
		"etc/hostname":    "",
		"etc/hosts":       "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
	} {
		p := filepath.Join(root, name)
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	if err := removeScratch(root, true); err != nil {
		return err
	}
	initFile := filepath.Join(root, initMountpoint)
	if err := os.WriteFile(initFile, nil, 0o755); err != nil {
		return err
	}
	return os.Chmod(initFile, 0o755)
}

// scratchGlobs are build leftovers removed from every layer: apt indexes and
// caches, logs of the build, backup files, ldconfig's cache of mtimes.
var scratchGlobs = []string{
	"var/lib/apt/lists/*",
	"var/cache/apt/*.bin",
	"var/cache/apt/archives/*.deb",
	"var/log/apt/*",
	"var/log/dpkg.log",
	"var/log/alternatives.log",
	"var/cache/debconf/*-old",
	"var/lib/dpkg/*-old",
	"var/cache/ldconfig/aux-cache",
	"root/.cache",
	"tmp/*",
}

// removeScratch deletes scratchGlobs below root. In a base tree apt's lock
// and partial directory stay; in an overlay upper dir removing a path
// reverts it to the base.
func removeScratch(root string, base bool) error {
	for _, g := range scratchGlobs {
		matches, err := filepath.Glob(filepath.Join(root, g))
		if err != nil {
			return err
		}
		for _, m := range matches {
			if b := filepath.Base(m); base && (b == "lock" || b == "partial") {
				continue
			}
			if err := os.RemoveAll(m); err != nil {
				return err
			}
		}
	}
	return nil
}

// pruneBaseDirs removes cached bases other than keep (older recipes).
func pruneBaseDirs(parent, keep string, log *slog.Logger) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.Name() == keep {
			continue
		}
		if err := removeTree(filepath.Join(parent, e.Name())); err != nil {
			log.Warn("prune old base cache", "dir", e.Name(), "error", err)
		}
	}
}

// buildAptLayer installs packages over the base rootfs in an overlay mount
// (chroot, host resolv.conf, shared .deb cache) and pushes the overlay's
// upper directory as a layer, deletions as whiteouts.
func buildAptLayer(ctx context.Context, a aptBuild, push func(func(io.Writer) error) (ocispec.Descriptor, error)) (desc ocispec.Descriptor, retErr error) {
	for _, p := range []string{a.baseRoot, a.work} {
		if strings.ContainsAny(p, ",:\\") {
			return desc, fmt.Errorf("path %q cannot be used in overlay options", p)
		}
	}
	if err := removeTree(a.work); err != nil {
		return desc, err
	}
	upper, ovlWork, merged := filepath.Join(a.work, "upper"), filepath.Join(a.work, "work"), filepath.Join(a.work, "merged")
	for _, d := range []string{upper, ovlWork, merged, filepath.Join(a.debCache, "partial"), filepath.Dir(a.logFile)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return desc, err
		}
	}
	defer func() {
		if err := removeTree(a.work); err != nil {
			retErr = errors.Join(retErr, err)
		}
	}()

	var m mountStack
	defer func() {
		if err := m.unmountAll(); err != nil {
			retErr = errors.Join(retErr, err)
		}
	}()
	opts := "lowerdir=" + a.baseRoot + ",upperdir=" + upper + ",workdir=" + ovlWork + ",index=off,metacopy=off,redirect_dir=off"
	if err := m.mount("overlay", merged, "overlay", 0, opts); err != nil {
		return desc, err
	}
	if err := m.mount("proc", filepath.Join(merged, "proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return desc, err
	}
	if err := m.mount("/dev", filepath.Join(merged, "dev"), "", unix.MS_BIND, ""); err != nil {
		return desc, err
	}
	if err := m.mount(a.debCache, filepath.Join(merged, "var/cache/apt/archives"), "", unix.MS_BIND, ""); err != nil {
		return desc, err
	}
	if _, err := os.Stat("/etc/resolv.conf"); err == nil {
		if err := m.mount("/etc/resolv.conf", filepath.Join(merged, "etc/resolv.conf"), "", unix.MS_BIND, ""); err != nil {
			return desc, err
		}
	}

	if err := os.WriteFile(a.logFile, nil, 0o644); err != nil {
		return desc, err
	}
	for _, step := range []struct {
		what string
		args []string
	}{
		{"apt-get update", []string{"-q", "-o", "Acquire::Languages=none", "update"}},
		{"apt-get install", append([]string{"-q", "-y", "--no-install-recommends", "install", "--"}, a.packages...)},
	} {
		cmd := exec.CommandContext(ctx, "/usr/bin/apt-get", step.args...) // path inside the chroot
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: merged}
		cmd.Dir = "/"
		cmd.Env = chrootEnv()
		if err := runLogged(cmd, step.what, a.logFile); err != nil {
			return desc, err
		}
	}
	if err := m.unmountAll(); err != nil {
		return desc, err
	}
	if err := removeScratch(upper, false); err != nil {
		return desc, err
	}
	return push(func(w io.Writer) error { return writeDirTar(w, upper, a.baseRoot) })
}

// chrootEnv is the environment of apt inside the build chroot: fixed values
// plus the host's proxy settings.
func chrootEnv() []string {
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root",
		"LC_ALL=C.UTF-8",
		"DEBIAN_FRONTEND=noninteractive",
		"DEBCONF_NONINTERACTIVE_SEEN=true",
	}
	for _, k := range []string{"http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// runLogged runs cmd with its output appended to logFile; on failure the
// error carries the log's last lines.
func runLogged(cmd *exec.Cmd, what, logFile string) error {
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(f, "+ %s\n", strings.Join(cmd.Args, " "))
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) } // let it unmount
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w (log %s):\n%s", what, err, logFile, logTail(logFile, 15))
	}
	return nil
}

// mountStack undoes its mounts in reverse order.
type mountStack struct{ targets []string }

func (m *mountStack) mount(source, target, fstype string, flags uintptr, data string) error {
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s on %s: %w", source, target, err)
	}
	m.targets = append(m.targets, target)
	// Keep what is mounted below from propagating to (or from) the host.
	if err := unix.Mount("", target, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make %s private: %w", target, err)
	}
	return nil
}

func (m *mountStack) unmountAll() error {
	var errs []error
	for i := len(m.targets) - 1; i >= 0; i-- {
		t := m.targets[i]
		if err := unix.Unmount(t, 0); err != nil {
			if err2 := unix.Unmount(t, unix.MNT_DETACH); err2 != nil {
				errs = append(errs, fmt.Errorf("unmount %s: %w", t, err))
			}
		}
	}
	m.targets = nil
	return errors.Join(errs...)
}

// mountsBelow lists mountpoints at or below dir, deepest first.
func mountsBelow(dir string) ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMountinfo(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out, nil
}

// unescapeMountinfo decodes the octal escapes (\040 etc.) of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeTree deletes dir after detaching anything still mounted below it
// (a crashed build), and refuses if a mount stays: os.RemoveAll would
// otherwise descend into a bind-mounted /dev.
func removeTree(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if abs == "/" {
		return fmt.Errorf("refusing to remove /")
	}
	for range 3 {
		mps, err := mountsBelow(abs)
		if err != nil {
			return err
		}
		if len(mps) == 0 {
			return os.RemoveAll(abs)
		}
		for _, mp := range mps {
			_ = unix.Unmount(mp, unix.MNT_DETACH) // checked on the next pass
		}
	}
	return fmt.Errorf("%s still has mounts below it; not removing it", abs)
}

// lockDir takes an exclusive flock on dir/.lock, waiting (and saying so
// once through onWait) while another process holds it.
func lockDir(ctx context.Context, dir string, onWait func()) (func() error, error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	waited := false
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		if !waited {
			onWait()
			waited = true
		}
		// Polling: flock cannot be interrupted by a context.
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return func() error {
		defer f.Close()
		return unix.Flock(int(f.Fd()), unix.LOCK_UN)
	}, nil
}

// Overlayfs markers in an upper directory.
const (
	xattrOpaque   = "trusted.overlay.opaque"
	xattrRedirect = "trusted.overlay.redirect"
	xattrMetacopy = "trusted.overlay.metacopy"
	xattrCaps     = "security.capability"
)

func getxattr(p, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(p, name, buf)
		if errors.Is(err, unix.ENODATA) || errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("getxattr %s %s: %w", p, name, err)
		}
		return buf[:n], nil
	}
}

// writeDirTar writes the tree below root as an uncompressed layer: entries
// in lexical order, numeric owners, permission bits, whole-second mtimes
// (kept: Python checks .pyc files against their sources' mtimes), hardlinks
// as links to the first path seen, symlinks as is and file capabilities.
// Device nodes and sockets are left out (the runtime provides /dev). With
// lower set, root is an overlayfs upper directory over lower: 0/0 character
// devices become .wh. whiteouts and opaque directories get .wh..wh..opq,
// each only where lower has something to hide (the kernel also marks every
// new directory opaque, as a lookup shortcut).
func writeDirTar(w io.Writer, root, lower string) error {
	overlay := lower != ""
	inLower := func(name string, dir bool) bool {
		fi, err := os.Lstat(filepath.Join(lower, name))
		return err == nil && (!dir || fi.IsDir())
	}
	tw := tar.NewWriter(w)
	type inode struct{ dev, ino uint64 }
	links := map[inode]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		name := filepath.ToSlash(p[len(root)+1:])
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return fmt.Errorf("lstat %s: %w", p, err)
		}
		hdr := &tar.Header{
			Name:    name,
			Mode:    int64(st.Mode & 0o7777),
			Uid:     int(st.Uid),
			Gid:     int(st.Gid),
			ModTime: time.Unix(st.Mtim.Sec, 0),
			Format:  tar.FormatPAX,
		}
		opaque := false
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
			if overlay {
				if v, err := getxattr(p, xattrRedirect); err != nil || v != nil {
					return errors.Join(err, fmt.Errorf("%s: overlay redirect not supported", name))
				}
				v, err := getxattr(p, xattrOpaque)
				if err != nil {
					return err
				}
				opaque = string(v) == "y" && inLower(name, true)
			}
		case unix.S_IFREG:
			if overlay {
				if v, err := getxattr(p, xattrMetacopy); err != nil || v != nil {
					return errors.Join(err, fmt.Errorf("%s: overlay metacopy not supported", name))
				}
			}
			key := inode{uint64(st.Dev), st.Ino}
			if first, ok := links[key]; ok && st.Nlink > 1 {
				hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
				break
			}
			if st.Nlink > 1 {
				links[key] = name
			}
			hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
			caps, err := getxattr(p, xattrCaps)
			if err != nil {
				return err
			}
			if caps != nil {
				hdr.PAXRecords = map[string]string{"SCHILY.xattr." + xattrCaps: string(caps)}
			}
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
		case unix.S_IFIFO:
			hdr.Typeflag = tar.TypeFifo
		case unix.S_IFCHR:
			if overlay && st.Rdev == 0 { // whiteout: the path was deleted
				if !inLower(name, false) {
					return nil
				}
				dir, base := filepath.Split(name)
				return tw.WriteHeader(&tar.Header{
					Typeflag: tar.TypeReg, Name: dir + ".wh." + base, Mode: 0o644,
					ModTime: hdr.ModTime, Format: tar.FormatPAX,
				})
			}
			return nil
		default: // block devices, sockets
			return nil
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			n, err := io.Copy(tw, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			if n != hdr.Size {
				return fmt.Errorf("%s changed size while being archived", p)
			}
		}
		if opaque {
			return tw.WriteHeader(&tar.Header{
				Typeflag: tar.TypeReg, Name: name + "/.wh..wh..opq", Mode: 0o644,
				ModTime: hdr.ModTime, Format: tar.FormatPAX,
			})
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/isol8/isol8/internal/testenv"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// makeTree builds a small rootfs-like tree with fixed mtimes.
func makeTree(t *testing.T, root string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	must(os.WriteFile(filepath.Join(root, "usr/bin/tool"), []byte("#!/bin/sh\necho hi\n"), 0o755))
	must(os.Link(filepath.Join(root, "usr/bin/tool"), filepath.Join(root, "usr/bin/tool2")))
	must(os.Symlink("usr/bin", filepath.Join(root, "bin")))
	must(os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644))
	must(unix.Mkfifo(filepath.Join(root, "fifo"), 0o600))
	must(unix.Chmod(filepath.Join(root, "usr/bin/tool"), 0o4755))
	ts := time.Date(2024, 1, 2, 3, 4, 5, 600, time.UTC)
	for _, p := range []string{"usr/bin/tool", "etc/passwd", "fifo", "etc", "usr/bin", "usr", ""} {
		must(os.Chtimes(filepath.Join(root, p), ts, ts))
	}
	must(unix.Lutimes(filepath.Join(root, "bin"), []unix.Timeval{{Sec: ts.Unix()}, {Sec: ts.Unix()}}))
}

func tarDigest(t *testing.T, root, lower string) ([32]byte, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := writeDirTar(&buf, root, lower); err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(buf.Bytes()), buf.Bytes()
}

func TestWriteDirTarDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	makeTree(t, a)
	time.Sleep(10 * time.Millisecond) // different inode numbers and ctimes: must not matter
	makeTree(t, b)
	d1, raw := tarDigest(t, a, "")
	d2, _ := tarDigest(t, a, "")
	d3, _ := tarDigest(t, b, "")
	if d1 != d2 {
		t.Fatal("same dir gave different digests")
	}
	if d1 != d3 {
		t.Fatal("identical trees gave different digests")
	}

	got := readLayer(t, raw)
	names := []string{}
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
	}
	want := []string{"bin", "etc/", "etc/passwd", "fifo", "usr/", "usr/bin/", "usr/bin/tool", "usr/bin/tool2"}
	if len(names) != len(want) {
		t.Fatalf("entries %q, want %q", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("entries %q, want %q", names, want)
		}
	}
	if h := got["usr/bin/tool"]; h.Mode != 0o4755 || h.Typeflag != tar.TypeReg || !h.ModTime.Equal(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("tool: mode %o type %c mtime %v", h.Mode, h.Typeflag, h.ModTime)
	}
	if h := got["usr/bin/tool2"]; h.Typeflag != tar.TypeLink || h.Linkname != "usr/bin/tool" {
		t.Errorf("tool2: %+v", h)
	}
	if h := got["bin"]; h.Typeflag != tar.TypeSymlink || h.Linkname != "usr/bin" {
		t.Errorf("bin: %+v", h)
	}
	if h := got["fifo"]; h.Typeflag != tar.TypeFifo {
		t.Errorf("fifo: %+v", h)
	}
	if h := got["etc/passwd"]; h.Uid != os.Getuid() || h.Gid != os.Getgid() || h.Uname != "" {
		t.Errorf("passwd owner %d:%d %q", h.Uid, h.Gid, h.Uname)
	}

	// Content changes change the digest.
	os.WriteFile(filepath.Join(b, "etc/passwd"), []byte("root:x:0:0::/root:/bin/bash\n"), 0o644)
	if d4, _ := tarDigest(t, b, ""); d4 == d1 {
		t.Fatal("changed content, same digest")
	}
}

// TestWriteDirTarOverlay checks whiteout conversion of an overlayfs upper
// directory (character device 0/0, opaque xattr).
func TestWriteDirTarOverlay(t *testing.T) {
	testenv.MustHaveRoot(t)
	up, low := t.TempDir(), t.TempDir()
	// lower has etc/gone and etc/opaque/old; etc/fresh is new (and marked
	// opaque by the kernel's shortcut), etc/phantom whites out nothing.
	os.MkdirAll(filepath.Join(low, "etc/opaque"), 0o755)
	os.WriteFile(filepath.Join(low, "etc/opaque/old"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(low, "etc/gone"), []byte("x"), 0o644)
	os.MkdirAll(filepath.Join(up, "etc/fresh"), 0o755)
	os.MkdirAll(filepath.Join(up, "etc/opaque"), 0o755)
	os.WriteFile(filepath.Join(up, "etc/opaque/new"), []byte("x"), 0o644)
	// Whiteouts: character devices 0/0 with no permissions.
	if err := unix.Mknod(filepath.Join(up, "etc/gone"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(up, "etc/phantom"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"etc/opaque", "etc/fresh"} {
		if err := unix.Lsetxattr(filepath.Join(up, d), xattrOpaque, []byte("y"), 0); err != nil {
			t.Skipf("cannot set trusted xattrs here: %v", err)
		}
	}
	if err := unix.Mknod(filepath.Join(up, "etc/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	_, raw := tarDigest(t, up, low)
	got := readLayer(t, raw)
	for _, name := range []string{"etc/", "etc/.wh.gone", "etc/opaque/", "etc/opaque/.wh..wh..opq", "etc/opaque/new"} {
		if _, ok := got[name]; !ok {
			t.Errorf("missing %s in %v", name, got)
		}
	}
	for _, name := range []string{"etc/gone", "etc/null", "etc/.wh.phantom", "etc/fresh/.wh..wh..opq"} {
		if _, ok := got[name]; ok {
			t.Errorf("%s should not be in the layer", name)
		}
	}
	// Without overlay the device is just skipped.
	_, raw = tarDigest(t, up, "")
	if _, ok := readLayer(t, raw)["etc/.wh.gone"]; ok {
		t.Error("whiteout outside overlay mode")
	}
}

func TestRemoveTreeUnmountsFirst(t *testing.T) {
	testenv.MustHaveRoot(t)
	dir := t.TempDir()
	src := t.TempDir()
	keep := filepath.Join(src, "keep")
	os.WriteFile(keep, []byte("x"), 0o644)
	mnt := filepath.Join(dir, "a", "mnt")
	os.MkdirAll(mnt, 0o755)
	if err := unix.Mount(src, mnt, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	if err := removeTree(dir); err != nil {
		unix.Unmount(mnt, unix.MNT_DETACH)
		t.Fatal(err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("removeTree deleted through a bind mount: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("dir still there: %v", err)
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", `/plain`: "/plain", `/x\134y`: `/x\y`, `/end\04`: `/end\04`} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLockDirWaits(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockDir(t.Context(), dir, func() { t.Error("first lock waited") })
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	got := make(chan error, 1)
	go func() {
		u2, err := lockDir(t.Context(), dir, func() { close(waited) })
		if err == nil {
			err = u2()
		}
		got <- err
	}()
	<-waited // the second locker saw the lock taken
	select {
	case err := <-got:
		t.Fatalf("second lock acquired while held: %v", err)
	default:
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	u, _ := lockDir(t.Context(), dir, func() {})
	defer u()
	cancel()
	if _, err := lockDir(ctx, dir, func() {}); err == nil {
		t.Fatal("lock with a cancelled context succeeded while held")
	}
}

// TestAptLayerFailure runs a real apt install of a package that does not
// exist over the cached base: the error carries apt's last lines and no
// mount or scratch directory is left behind.
func TestAptLayerFailure(t *testing.T) {
	testenv.MustHaveRoot(t)
	b := newBuilder(nil, Options{})
	root := filepath.Join(b.baseDir(), "rootfs")
	if _, err := os.Stat(filepath.Join(root, initMountpoint)); err != nil {
		t.Skipf("no cached base rootfs at %s (TestSetup builds it)", root)
	}
	work := filepath.Join(t.TempDir(), "work")
	logFile := filepath.Join(t.TempDir(), "apt.log")
	_, err := buildAptLayer(t.Context(), aptBuild{
		baseRoot: root, work: work, debCache: t.TempDir(), logFile: logFile,
		packages: []string{"isol8-no-such-package"},
	}, func(func(io.Writer) error) (ocispec.Descriptor, error) {
		t.Fatal("pushed a layer from a failed build")
		return ocispec.Descriptor{}, nil
	})
	if err == nil || !strings.Contains(err.Error(), "isol8-no-such-package") {
		t.Fatalf("err = %v, want apt's complaint about the package", err)
	}
	t.Logf("error: %v", err)
	if mps, _ := mountsBelow(work); len(mps) != 0 {
		t.Fatalf("mounts left: %v", mps)
	}
	if _, err := os.Stat(work); !os.IsNotExist(err) {
		t.Fatalf("work dir left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "var/lib/apt/lists/lock")); err != nil {
		t.Fatalf("base rootfs damaged: %v", err)
	}
}

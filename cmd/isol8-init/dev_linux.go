package main

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// devNode is one entry /dev must hold, exactly as the runtime made it.
type devNode struct {
	name         string
	kind         fs.FileMode // 0 for a character device, else fs.ModeDir or fs.ModeSymlink
	major, minor uint32      // character devices
	perm         fs.FileMode // permission and sticky bits (not for symlinks)
	target       string      // symlinks
}

// expectedDev is /dev of a fresh sandbox: the runtime's standard devices and
// links plus the devpts, shm and mqueue mounts. User code cannot change
// /dev (root-owned, mode 0755); the check is there so that no root process
// ever could either without the sandbox being destroyed.
var expectedDev = []devNode{
	{name: "fd", kind: fs.ModeSymlink, target: "/proc/self/fd"},
	{name: "full", major: 1, minor: 7, perm: 0o666},
	{name: "mqueue", kind: fs.ModeDir, perm: 0o777 | fs.ModeSticky},
	{name: "null", major: 1, minor: 3, perm: 0o666},
	{name: "ptmx", kind: fs.ModeSymlink, target: "pts/ptmx"},
	{name: "pts", kind: fs.ModeDir, perm: 0o755},
	{name: "random", major: 1, minor: 8, perm: 0o666},
	{name: "shm", kind: fs.ModeDir, perm: 0o777 | fs.ModeSticky},
	{name: "stderr", kind: fs.ModeSymlink, target: "/proc/self/fd/2"},
	{name: "stdin", kind: fs.ModeSymlink, target: "/proc/self/fd/0"},
	{name: "stdout", kind: fs.ModeSymlink, target: "/proc/self/fd/1"},
	{name: "tty", major: 5, minor: 0, perm: 0o666},
	{name: "urandom", major: 1, minor: 9, perm: 0o666},
	{name: "zero", major: 1, minor: 5, perm: 0o666},
}

// expectedPts is /dev/pts once no terminal is open: the multiplexer alone.
var expectedPts = []devNode{{name: "ptmx", major: 5, minor: 2, perm: 0o666}}

func checkDev() error {
	return checkDevAt("/dev", overflowID())
}

// checkDevAt compares dir (and dir/pts) with the expected nodes. Nodes are
// owned by root, or by the overflow id when the runtime bind-mounted host
// devices into a user namespace that does not map host root.
func checkDevAt(dir string, overflow uint32) error {
	st, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if err := checkNode(dir, devNode{kind: fs.ModeDir, perm: 0o755}, st, overflow); err != nil {
		return err
	}
	if err := checkDirAgainst(dir, expectedDev, overflow); err != nil {
		return err
	}
	return checkDirAgainst(path.Join(dir, "pts"), expectedPts, overflow)
}

func checkDirAgainst(dir string, want []devNode, overflow uint32) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	for _, w := range want {
		if !slices.Contains(names, w.name) {
			return fmt.Errorf("%s/%s is missing", dir, w.name)
		}
	}
	for _, n := range names {
		i := slices.IndexFunc(want, func(w devNode) bool { return w.name == n })
		if i < 0 {
			return fmt.Errorf("unexpected %s/%s", dir, n)
		}
		p := path.Join(dir, n)
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if err := checkNode(p, want[i], st, overflow); err != nil {
			return err
		}
	}
	return nil
}

func checkNode(p string, w devNode, st fs.FileInfo, overflow uint32) error {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: no stat data", p)
	}
	if sys.Uid != 0 && sys.Uid != overflow || sys.Gid != 0 && sys.Gid != overflow {
		return fmt.Errorf("%s is owned by %d:%d", p, sys.Uid, sys.Gid)
	}
	mode := st.Mode()
	switch w.kind {
	case fs.ModeSymlink:
		if mode.Type() != fs.ModeSymlink {
			return fmt.Errorf("%s is %v, want a symlink", p, mode.Type())
		}
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		if target != w.target {
			return fmt.Errorf("%s points to %q, want %q", p, target, w.target)
		}
		return nil
	case fs.ModeDir:
		if !mode.IsDir() {
			return fmt.Errorf("%s is %v, want a directory", p, mode.Type())
		}
	default:
		if mode.Type() != fs.ModeDevice|fs.ModeCharDevice {
			return fmt.Errorf("%s is %v, want a character device", p, mode.Type())
		}
		if maj, min := devMajor(sys.Rdev), devMinor(sys.Rdev); maj != w.major || min != w.minor {
			return fmt.Errorf("%s is device %d:%d, want %d:%d", p, maj, min, w.major, w.minor)
		}
	}
	if got := mode & (fs.ModePerm | fs.ModeSticky | fs.ModeSetuid | fs.ModeSetgid); got != w.perm {
		return fmt.Errorf("%s has mode %v, want %v", p, got, w.perm)
	}
	return nil
}

// Linux dev_t encoding (see makedev(3)).
func devMajor(d uint64) uint32 { return uint32((d>>8)&0xfff | (d>>32)&^0xfff) }
func devMinor(d uint64) uint32 { return uint32(d&0xff | (d>>12)&^0xff) }

// overflowID is the uid shown for ids a user namespace does not map.
func overflowID() uint32 {
	b, err := os.ReadFile("/proc/sys/kernel/overflowuid")
	if err != nil {
		return 65534
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	if err != nil {
		return 65534
	}
	return uint32(n)
}

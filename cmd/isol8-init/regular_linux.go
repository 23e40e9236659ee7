package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// errNotRegular is returned for a path that exists but is not a regular
// file. The agent runs as root and serves requests one control loop at a
// time, so it must never open a FIFO (blocks until a peer appears), a socket
// or a device on the engine's behalf.
var errNotRegular = errors.New("not a regular file")

// openRegular opens rel inside root without following a final symlink and
// without blocking, and refuses anything but a regular file. The Lstat
// refuses a final symlink with a clear error (os.Root resolves symlinks
// itself, inside the root, whatever O_NOFOLLOW says). User code may swap the
// path after it: O_NONBLOCK keeps the open from waiting on a FIFO and the
// Fstat refuses what was opened if it is not a regular file.
func openRegular(root *os.Root, rel string, flag int, perm fs.FileMode) (*os.File, error) {
	if st, err := root.Lstat(rel); err == nil && !st.Mode().IsRegular() {
		return nil, notRegular(st.Mode())
	}
	f, err := root.OpenFile(rel, flag|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, perm)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.ENXIO) {
			return nil, fmt.Errorf("%w (a symlink, FIFO or socket)", errNotRegular)
		}
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, notRegular(st.Mode())
	}
	return f, nil
}

func notRegular(m fs.FileMode) error {
	kind := "special file"
	switch {
	case m&fs.ModeSymlink != 0:
		kind = "symlink"
	case m.IsDir():
		kind = "directory"
	case m&fs.ModeNamedPipe != 0:
		kind = "FIFO"
	case m&fs.ModeSocket != 0:
		kind = "socket"
	case m&fs.ModeDevice != 0:
		kind = "device"
	}
	return fmt.Errorf("%w (a %s)", errNotRegular, kind)
}

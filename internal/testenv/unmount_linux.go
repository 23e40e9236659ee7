package testenv

import (
	"bytes"
	"errors"
	"os"
	"syscall"
)

// unmountBelow lazily unmounts every mount point under dir, deepest first.
func unmountBelow(dir string) error {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var points []string
	for _, line := range bytes.Split(b, []byte("\n")) {
		f := bytes.Fields(line)
		if len(f) > 4 && bytes.HasPrefix(f[4], []byte(dir+"/")) {
			points = append(points, string(f[4]))
		}
	}
	var errs []error
	for i := len(points) - 1; i >= 0; i-- {
		if err := syscall.Unmount(points[i], syscall.MNT_DETACH); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

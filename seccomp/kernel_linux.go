package seccomp

import "golang.org/x/sys/unix"

// hostKernel returns the running kernel's major.minor version.
func hostKernel() (kernelVersion, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return kernelVersion{}, err
	}
	return parseKernelVersion(unix.ByteSliceToString(u.Release[:]))
}

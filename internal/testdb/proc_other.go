//go:build !linux

package testdb

import "syscall"

// sysProcAttr runs a server as cred in its own process group (the test
// servers only run on Linux; this keeps the package building elsewhere).
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: true}
}

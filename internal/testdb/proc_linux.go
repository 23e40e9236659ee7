package testdb

import "syscall"

// sysProcAttr runs a server as cred in its own process group, killed when
// the test process dies.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
}

package userns

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Tools names the host programs a Holder runs. Both are util-linux and
// coreutils programs every Debian host has.
type Tools struct {
	Unshare, Cat string
}

// LookTools finds unshare and cat on PATH.
func LookTools() (Tools, error) {
	var t Tools
	var err error
	if t.Unshare, err = exec.LookPath("unshare"); err != nil {
		return Tools{}, fmt.Errorf("user namespaces need util-linux's unshare: %w", err)
	}
	if t.Cat, err = exec.LookPath("cat"); err != nil {
		return Tools{}, fmt.Errorf("user namespaces need cat: %w", err)
	}
	return t, nil
}

// Holder is a user namespace made for one sandbox, kept alive by a small
// process until the sandbox's container has joined it.
//
// The namespace must be created by a process running as the sandbox's own
// host uid, not by root (as the OCI runtime would): the kernel charges
// per-user limits of everything inside a user namespace (inotify instances
// and watches, user namespaces, ...) also to the namespace's owner in the
// parent namespace. A root-owned namespace would pool every sandbox's count
// with host root's, the shared limit this package exists to remove.
type Holder struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr bytes.Buffer
	path   string
	exited chan struct{} // closed when the holder has exited and is reaped
}

// NewHolder starts `unshare --user cat` as host uid/gid hostID, waits until
// its namespace exists and maps container ids 0..size-1 onto hostID.. .
// Closing stdin (Close, or this process dying) ends the holder.
func NewHolder(ctx context.Context, tools Tools, hostID, size uint32) (_ *Holder, retErr error) {
	cmd := exec.Command(tools.Unshare, "--user", "--", tools.Cat)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: hostID, Gid: hostID, Groups: []uint32{}},
	}
	cmd.Dir = "/"
	cmd.Env = []string{}
	h := &Holder{cmd: cmd, exited: make(chan struct{})}
	cmd.Stderr = &h.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("user namespace holder: %w", err)
	}
	h.stdin = stdin
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start user namespace holder: %w", err)
	}
	h.path = "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/user"
	go func() {
		_ = cmd.Wait()
		close(h.exited)
	}()
	defer func() {
		if retErr != nil {
			h.Close()
		}
	}()
	if err := h.waitUnshared(ctx); err != nil {
		return nil, err
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	line := []byte(fmt.Sprintf("0 %d %d\n", hostID, size))
	for _, f := range []string{"uid_map", "gid_map"} {
		if err := os.WriteFile("/proc/"+pid+"/"+f, line, 0); err != nil {
			return nil, fmt.Errorf("map user namespace ids: %w", err)
		}
	}
	return h, nil
}

// waitUnshared polls until the holder's user namespace differs from ours.
func (h *Holder) waitUnshared(ctx context.Context) error {
	self, err := os.Readlink("/proc/self/ns/user")
	if err != nil {
		return fmt.Errorf("user namespace: %w", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for delay := 50 * time.Microsecond; ; delay = min(2*delay, 5*time.Millisecond) {
		ns, err := os.Readlink(h.path)
		if err == nil && ns != self {
			return nil
		}
		exited := h.exited
		if err != nil {
			// The helper's /proc entry is gone: it exited, and Wait is
			// about to say so. Give it a moment, to report why.
			exited = nil
			select {
			case <-h.exited:
				exited = h.exited
			case <-time.After(time.Second):
			}
		}
		select {
		case <-exited:
			// Most likely unshare failed (user namespaces disabled for
			// unprivileged users): say what it said.
			return fmt.Errorf("create user namespace: helper exited: %s", strings.TrimSpace(h.stderr.String()))
		default:
		}
		if err != nil {
			return fmt.Errorf("user namespace of the helper: %w", err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("user namespace holder did not unshare within 10s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}

// Path is the namespace's /proc path, valid until Close.
func (h *Holder) Path() string { return h.path }

// Close ends the holder. The namespace lives on while the container's
// processes are in it.
func (h *Holder) Close() {
	h.stdin.Close()
	_ = h.cmd.Process.Kill()
	<-h.exited
}

package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Dockerd is a private Docker daemon for tests: its own data root, exec
// root (where it starts its own containerd, apart from isol8's), unix
// socket and pid file, no iptables rules and no bridge, so it touches
// nothing of the host's or of another test's.
type Dockerd struct {
	Dir      string // holds everything below
	Host     string // "unix://<Dir>/d.sock", for DOCKER_HOST
	DataRoot string
	ExecRoot string
	cmd      *exec.Cmd
	done     chan struct{}
}

// BundleConfig is where the daemon's containerd keeps the runtime spec it
// handed to runc for container id (the full Docker id).
func (d *Dockerd) BundleConfig(id string) string {
	return filepath.Join(d.ExecRoot, "containerd", "daemon", "io.containerd.runtime.v2.task", "moby", id, "config.json")
}

// StartDockerd starts a daemon under a fresh directory and waits until its
// socket answers. Stop stops it and removes the directory.
func StartDockerd() (*Dockerd, error) {
	if _, err := exec.LookPath("dockerd"); err != nil {
		return nil, fmt.Errorf("dockerd not on PATH (apt-get install docker.io): %w", err)
	}
	// Short: the containerd socket under the exec root must fit a unix
	// socket path.
	dir, err := os.MkdirTemp("", "i8d-")
	if err != nil {
		return nil, err
	}
	d := &Dockerd{
		Dir:      dir,
		Host:     "unix://" + filepath.Join(dir, "d.sock"),
		DataRoot: filepath.Join(dir, "data"),
		ExecRoot: filepath.Join(dir, "x"),
		done:     make(chan struct{}),
	}
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	d.cmd = exec.Command("dockerd",
		"--data-root", d.DataRoot, "--exec-root", d.ExecRoot,
		"-H", d.Host, "--pidfile", filepath.Join(dir, "d.pid"),
		"--iptables=false", "--ip-masq=false", "--ip-forward=false", "--bridge=none",
		"--storage-driver=overlay2", "--log-driver=none",
	)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start dockerd: %w", err)
	}
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	sock := filepath.Join(dir, "d.sock")
	deadline := time.Now().Add(60 * time.Second)
	for !listening(sock) {
		select {
		case <-d.done:
			return nil, fmt.Errorf("dockerd exited at start: %s", d.logTail())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = d.Stop()
			return nil, fmt.Errorf("dockerd did not listen within 60s: %s", d.logTail())
		}
	}
	return d, nil
}

func (d *Dockerd) logTail() string {
	b, _ := os.ReadFile(filepath.Join(d.Dir, "dockerd.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}

// Stop stops the daemon (which stops its containerd and containers) and
// removes its directory.
func (d *Dockerd) Stop() error {
	if d.cmd.Process != nil {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			<-d.done
		}
	}
	// A containerd the daemon started may outlive a killed daemon.
	if b, err := os.ReadFile(filepath.Join(d.ExecRoot, "containerd", "containerd.pid")); err == nil {
		if pid, err := strconv.Atoi(string(bytes.TrimSpace(b))); err == nil && pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	// Overlay mounts of a killed daemon would keep RemoveAll from working.
	_ = unmountBelow(d.Dir)
	return os.RemoveAll(d.Dir)
}

// SharedDockerd starts one daemon per test binary, on first use; the
// binary's TestMain calls StopSharedDockerd after the tests. A test that
// needs it calls MustHaveDockerd.
type SharedDockerd struct {
	once sync.Once
	d    *Dockerd
	err  error
}

// Get returns the daemon, starting it the first time.
func (s *SharedDockerd) Get() (*Dockerd, error) {
	s.once.Do(func() { s.d, s.err = StartDockerd() })
	return s.d, s.err
}

// Stop stops the daemon if it was started.
func (s *SharedDockerd) Stop() {
	if s.d != nil {
		_ = s.d.Stop()
	}
}

// MustHaveDockerd skips (fails when strict) unless root, dockerd installed
// and the shared daemon started.
func MustHaveDockerd(t testing.TB, s *SharedDockerd) *Dockerd {
	t.Helper()
	MustHaveRoot(t)
	MustHaveCommand(t, "dockerd")
	d, err := s.Get()
	if err != nil {
		missing(t, "needs a test dockerd: %v", err)
	}
	return d
}

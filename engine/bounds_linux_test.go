//go:build linux

package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	ctrd "github.com/isol8/isol8/driver/containerd"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// Regression tests for "the host stays bounded whatever a request asks".

// resetPeakRSS makes VmHWM start again from the current RSS, so a test
// measures its own peak and not that of earlier tests in the process.
func resetPeakRSS(t *testing.T) {
	t.Helper()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("reset VmHWM: %v", err)
	}
}

// peakRSSMB reads the process's VmHWM.
func peakRSSMB(t *testing.T) float64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return float64(kb) / 1024
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// TestOutputPathsBounded: ten names of one 64 MiB sparse file used to make
// the engine hold every copy (1.5 GB RSS). The total is now refused before
// anything is transferred.
func TestOutputPathsBounded(t *testing.T) {
	e := newTestEngine(t, Options{})
	mustHaveImage(t, e, "bash")
	var outputs []string
	for i := range 10 {
		outputs = append(outputs, fmt.Sprintf("/sandbox/l%d", i), fmt.Sprintf("/sandbox/s%d", i))
	}
	resetPeakRSS(t)
	_, err := e.Execute(t.Context(), Request{Runtime: "bash", TimeoutMs: 20000, OutputPaths: outputs, Code: `
truncate -s 64M /sandbox/big
for i in $(seq 0 9); do ln /sandbox/big /sandbox/l$i; ln -s /sandbox/big /sandbox/s$i; done
echo made`})
	peak := peakRSSMB(t)
	t.Logf("peak RSS %.0f MB, err %v", peak, err)
	if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "maxOutputFilesBytes") {
		t.Errorf("want an invalid-argument error naming maxOutputFilesBytes, got %v", err)
	}
	if peak >= 200 {
		t.Errorf("peak RSS %.0f MB, want < 200 MB", peak)
	}

	// Within the cap files still come back whole, and the peak stays low.
	resetPeakRSS(t)
	res := run(t, e, Request{Runtime: "bash", TimeoutMs: 20000,
		OutputPaths: []string{"/sandbox/a", "/sandbox/b", "/sandbox/c", "/sandbox/missing"}, Code: `
head -c 20000000 /dev/urandom > /sandbox/a; truncate -s 20000001 /sandbox/b; printf xyz > /sandbox/c`})
	peak = peakRSSMB(t)
	t.Logf("peak RSS within the cap %.0f MB", peak)
	if len(res.Files) != 3 || len(res.Files["/sandbox/b"]) != (20000001+2)/3*4 || res.Files["/sandbox/c"] != "eHl6" {
		t.Errorf("files: %d entries, b %d chars, c %q", len(res.Files), len(res.Files["/sandbox/b"]), res.Files["/sandbox/c"])
	}
	if peak >= 200 {
		t.Errorf("peak RSS %.0f MB within the cap, want < 200 MB", peak)
	}

	// More paths than maxOutputPaths are refused before any sandbox work.
	many := make([]string, 33) // the default maxOutputPaths is 32
	for i := range many {
		many[i] = fmt.Sprintf("/sandbox/f%d", i)
	}
	_, err = e.Execute(t.Context(), Request{Runtime: "bash", Code: "true", OutputPaths: many})
	if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "maxOutputPaths") {
		t.Errorf("%d output paths: want an invalid-argument error naming maxOutputPaths, got %v", len(many), err)
	}
}

// mknodAsSandboxRoot makes a device node in a sandbox's filesystem from the
// host. The sandbox's tmpfs belongs to its user namespace, where host root
// is not mapped (mknod as host root fails with EOVERFLOW), so the node is
// made with the file system ids of the sandbox's root (the agent's host
// ids) and CAP_MKNOD raised again after the fsuid change dropped it. All of
// it on a locked thread that is thrown away afterwards.
func mknodAsSandboxRoot(agentPID int, path string, mode uint32, dev int) error {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", agentPID))
	if err != nil {
		return err
	}
	var uid, gid int
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[0] == "Uid:" {
			uid, _ = strconv.Atoi(f[2])
		} else if len(f) > 2 && f[0] == "Gid:" {
			gid, _ = strconv.Atoi(f[2])
		}
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		done <- func() error {
			if err := unix.Setfsgid(gid); err != nil {
				return err
			}
			if err := unix.Setfsuid(uid); err != nil {
				return err
			}
			hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
			var data [2]unix.CapUserData
			if err := unix.Capget(&hdr, &data[0]); err != nil {
				return err
			}
			data[0].Effective, data[1].Effective = data[0].Permitted, data[1].Permitted
			if err := unix.Capset(&hdr, &data[0]); err != nil {
				return err
			}
			return unix.Mknod(path, mode, dev)
		}()
	}()
	return <-done
}

// agentHostPID returns the host pid of a sandbox's init.
func agentHostPID(t *testing.T, e *Engine, id string) int {
	t.Helper()
	if backendOf(e) == backendDocker {
		return dockerInspect(t, id).State.Pid
	}
	ctx := withNS(t.Context())
	ctr, err := e.host.drv.(*ctrd.Driver).Client().LoadContainer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	return int(task.Pid())
}

// TestSpecialFilesDoNotHang: a FIFO, a unix socket or a device at a file
// path used to block the agent (and with it the engine, every later request
// and Stop) forever. Each is now refused at once at every entry point.
func TestSpecialFilesDoNotHang(t *testing.T) {
	e := newTestEngine(t, Options{Mode: ModePersistent, MaxConcurrent: 1})
	mustHaveImage(t, e, "python")
	res := run(t, e, Request{Runtime: "python", TimeoutMs: 10000, Code: `
import os, socket
os.mkfifo("/sandbox/fifo")
socket.socket(socket.AF_UNIX).bind("/sandbox/sock")
print("ok")`})
	if res.Stdout != "ok" {
		t.Fatalf("setup: %q %q", res.Stdout, res.Stderr)
	}
	id := res.ContainerID
	// User code cannot make device nodes; the host can, through the
	// sandbox's root.
	pid := agentHostPID(t, e, id)
	dev := filepath.Join("/proc", strconv.Itoa(pid), "root/sandbox/null")
	if err := mknodAsSandboxRoot(pid, dev, syscall.S_IFCHR|0o666, int(1<<8|3)); err != nil {
		t.Fatalf("mknod: %v", err)
	}
	paths := []string{"/sandbox/fifo", "/sandbox/sock", "/sandbox/null"}
	for _, p := range paths {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		start := time.Now()
		_, err := e.GetFile(ctx, p)
		if err == nil || errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
			t.Errorf("GetFile(%s): %v after %s, want a prompt refusal", p, err, time.Since(start))
		}
		start = time.Now()
		err = e.PutFile(ctx, p, []byte("data"))
		if err == nil || errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
			t.Errorf("PutFile(%s): %v after %s, want a prompt refusal", p, err, time.Since(start))
		}
		cancel()
	}
	// Request files are written by the agent too.
	for _, p := range paths {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		start := time.Now()
		_, err := e.Execute(ctx, Request{Runtime: "python", Code: "print('x')", Files: map[string]string{p: "data"}})
		cancel()
		if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "not a regular file") || time.Since(start) > 10*time.Second {
			t.Errorf("files[%s]: %v after %s, want a prompt refusal", p, err, time.Since(start))
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := e.Execute(ctx, Request{Runtime: "python", Code: "print('after')", OutputPaths: paths})
	if err != nil || res.Stdout != "after" || len(res.Files) != 0 {
		t.Fatalf("run with special output paths: %v %+v", err, res)
	}
	done := make(chan error, 1)
	go func() { done <- e.Stop(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Stop hangs")
	}
	assertNothingLeft(t, e, id)
}

// TestPersistentLockHonoursDeadline: a caller waiting for the persistent
// sandbox behind a long execution gives up at its own deadline.
func TestPersistentLockHonoursDeadline(t *testing.T) {
	e := newTestEngine(t, Options{Mode: ModePersistent})
	mustHaveImage(t, e, "bash")
	run(t, e, Request{Runtime: "bash", Code: "true"})
	started := make(chan struct{})
	go func() {
		close(started)
		_, _ = e.Execute(context.Background(), Request{Runtime: "bash", Code: "sleep 5", TimeoutMs: 10000})
	}()
	<-started
	time.Sleep(500 * time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	start := time.Now()
	_, err := e.GetFile(ctx, "/sandbox/x")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Fatalf("GetFile behind a running execution: %v after %s", err, time.Since(start))
	}
}

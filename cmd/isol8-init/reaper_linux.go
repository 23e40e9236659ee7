package main

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// exitInfo is what wait4 told about one child.
type exitInfo struct {
	status syscall.WaitStatus
	rusage syscall.Rusage
}

// reaper is the only caller of wait4 in the process: as pid 1 the agent
// inherits every orphan, so it reaps with one wait4(-1) loop and hands the
// statuses of its own children to whoever registered for them. (Calling
// cmd.Wait beside such a loop would race it for the same statuses.)
type reaper struct {
	mu      sync.Mutex
	waiters map[int]chan exitInfo
	sigs    chan os.Signal
	oom     oomScore
}

func newReaper() *reaper {
	r := &reaper{
		waiters: map[int]chan exitInfo{},
		sigs:    make(chan os.Signal, 16),
		oom:     newOOMScore(),
	}
	signal.Notify(r.sigs, syscall.SIGCHLD)
	return r
}

func (r *reaper) loop() {
	for range r.sigs {
		r.reap()
	}
}

func (r *reaper) reap() {
	for {
		var ws syscall.WaitStatus
		var ru syscall.Rusage
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, &ru)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		// start holds r.mu across fork and registration, so a child of ours
		// always has its waiter by now; other pids are orphans of user code.
		r.mu.Lock()
		if ch, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			ch <- exitInfo{status: ws, rusage: ru}
		}
		r.mu.Unlock()
	}
}

// start forks a process with r.mu held, so the reaper cannot consume the
// child's status before the waiter exists.
func (r *reaper) start(argv0 string, argv []string, attr *syscall.ProcAttr) (int, <-chan exitInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	restore := r.oom.aroundFork()
	pid, err := syscall.ForkExec(argv0, argv, attr)
	restore()
	if err != nil {
		return 0, nil, err
	}
	ch := make(chan exitInfo, 1)
	r.waiters[pid] = ch
	return pid, ch, nil
}

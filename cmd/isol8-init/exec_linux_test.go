package main

import (
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startGroup starts `sleep 30` in a process group of its own, as the agent
// does, and returns it.
func startGroup(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// waitKilled waits for cmd to end and insists SIGKILL ended it.
func waitKilled(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the process group was not killed")
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("process ended with %v, want SIGKILL", cmd.ProcessState)
	}
}

// A kill that arrives before the fork (pgid still 0) used to be dropped,
// and the program ran to its end. It is remembered and applied at start.
func TestKillBeforeStartIsHonoured(t *testing.T) {
	ex := &execution{a: &agentState{}}
	ex.kill(false)
	if !ex.wasKilled() {
		t.Fatal("kill before start was not recorded")
	}
	cmd := startGroup(t)
	ex.started(cmd.Process.Pid)
	waitKilled(t, cmd)
}

// kill and started race from different goroutines (control loop vs the
// execution); under -race this must be clean and the group always dies.
func TestKillRacesStart(t *testing.T) {
	for i := 0; i < 20; i++ {
		ex := &execution{a: &agentState{}}
		cmd := startGroup(t)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); ex.kill(false) }()
		go func() { defer wg.Done(); ex.started(cmd.Process.Pid) }()
		wg.Wait()
		waitKilled(t, cmd)
	}
}

//go:build linux

package engine

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/isol8/isol8/agent"
)

// TestAgentThreadsReserved: the agent's threads are counted from the host
// side; the pids limit is the user's limit plus exactly those, and they do
// not grow while the sandbox works.
func TestAgentThreadsReserved(t *testing.T) {
	e := newTestEngine(t, Options{Mode: ModePersistent, PidsLimit: 7})
	mustHaveImage(t, e, "bash")
	res := run(t, e, Request{Runtime: "bash", Code: "echo ok"})
	taskDir := filepath.Join("/proc", strconv.Itoa(agentHostPID(t, e, res.ContainerID)), "task")
	count := func() int {
		tasks, err := os.ReadDir(taskDir)
		if err != nil {
			t.Fatal(err)
		}
		return len(tasks)
	}
	threads := count()
	max, err := os.ReadFile(filepath.Join(sandboxPidsDir(t, e, res.ContainerID), "pids.max"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("agent threads: %d (target %d), pids.max %s", threads, agent.AgentThreads, strings.TrimSpace(string(max)))
	if strings.TrimSpace(string(max)) != strconv.Itoa(7+threads) {
		t.Fatalf("pids.max %s, want 7 + %d agent threads", max, threads)
	}
	if threads > agent.AgentThreads+agent.AgentThreadsSlack {
		t.Fatalf("agent runs %d threads, more than the %d+%d it has room for", threads, agent.AgentThreads, agent.AgentThreadsSlack)
	}
	// Work that blocks the agent in system calls (files, output, stdin)
	// must not make it start more threads.
	for range 3 {
		run(t, e, Request{Runtime: "bash", Code: "cat; head -c 3000000 /dev/zero; echo x >&2", Stdin: "in",
			Files: map[string]string{"/sandbox/big": strings.Repeat("x", 1<<20)}, OutputPaths: []string{"/sandbox/big"}})
		if _, err := e.GetFile(t.Context(), "/sandbox/big"); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(); n != threads {
		t.Fatalf("agent threads went from %d to %d while working", threads, n)
	}
}

// TestPidsLimitExact: pidsLimit N lets user code run exactly N processes.
// pidsLimit 1 used to abort the agent ("failed to create new OS thread").
func TestPidsLimitExact(t *testing.T) { matrix(t, testPidsLimitExact) }

func testPidsLimitExact(t *testing.T, b backend) {
	for _, n := range []int64{1, 2, 12} {
		t.Run(strconv.FormatInt(n, 10), func(t *testing.T) {
			e := b.engine(t, Options{PidsLimit: n, PoolSize: noPool})
			mustHaveImage(t, e, "python")
			res, err := e.Execute(t.Context(), Request{Runtime: "python", TimeoutMs: 20000, Code: `
import os, time
kids = []
try:
    for i in range(100):
        pid = os.fork()
        if pid == 0:
            time.sleep(20)
            os._exit(0)
        kids.append(pid)
except OSError:
    pass
print(len(kids) + 1)
for k in kids:
    os.kill(k, 9)
`})
			if err != nil {
				t.Fatalf("Execute: %v", err)
			}
			if res.Stdout != strconv.FormatInt(n, 10) {
				t.Fatalf("pidsLimit %d: user code ran %q processes (stderr %q)", n, res.Stdout, res.Stderr)
			}
		})
	}
}

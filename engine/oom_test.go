package engine

import (
	"strings"
	"testing"
)

// TestAgentSurvivesTmpfsFill: filling /sandbox past the memory limit used to
// OOM-kill the agent ("sandbox agent stopped answering"). The writer is
// killed instead and the run reports oomKilled.
func TestAgentSurvivesTmpfsFill(t *testing.T) { matrix(t, testAgentSurvivesTmpfsFill) }

func testAgentSurvivesTmpfsFill(t *testing.T, b backend) {
	e := b.engine(t, Options{MemoryLimit: "128m"})
	mustHaveImage(t, e, "bash")
	res, err := e.Execute(t.Context(), Request{Runtime: "bash", TimeoutMs: 30000,
		Code: "dd if=/dev/zero of=/sandbox/fill bs=1M count=300"})
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if !res.OOMKilled {
		t.Fatalf("oomKilled false: exit %d stdout %q stderr %q", res.ExitCode, res.Stdout, res.Stderr)
	}
	// The sandbox (reset) and the engine keep working.
	res = run(t, e, Request{Runtime: "bash", Code: "cat /proc/self/oom_score_adj; ls /sandbox | wc -l"})
	if res.Stdout != "1000\n0" {
		t.Fatalf("after the fill: %q %q", res.Stdout, res.Stderr)
	}
}

// TestAgentSurvivesTmpfsFillPersistent: in persistent mode the filled
// tmpfs stays; the agent still answers and user code can free it.
func TestAgentSurvivesTmpfsFillPersistent(t *testing.T) {
	e := newTestEngine(t, Options{Mode: ModePersistent, MemoryLimit: "128m"})
	mustHaveImage(t, e, "bash")
	res := run(t, e, Request{Runtime: "bash", TimeoutMs: 30000, Code: "dd if=/dev/zero of=/sandbox/fill bs=1M count=300"})
	if !res.OOMKilled {
		t.Fatalf("oomKilled false: exit %d stderr %q", res.ExitCode, res.Stderr)
	}
	res = run(t, e, Request{Runtime: "bash", TimeoutMs: 30000, Code: "rm -f /sandbox/fill; echo freed"})
	if res.Stdout != "freed" {
		t.Fatalf("after the fill: exit %d %q %q", res.ExitCode, res.Stdout, res.Stderr)
	}
}

// TestUserCodeOOMScore: user code and whatever it forks at once run with
// the victim's score; the agent keeps its own.
func TestUserCodeOOMScore(t *testing.T) {
	e := newTestEngine(t, Options{Mode: ModePersistent})
	mustHaveImage(t, e, "bash")
	for range 5 {
		res := run(t, e, Request{Runtime: "bash", Code: "cat /proc/self/oom_score_adj; cat /proc/$$/oom_score_adj; cat /proc/1/oom_score_adj"})
		lines := strings.Split(res.Stdout, "\n")
		if len(lines) != 3 || lines[0] != "1000" || lines[1] != "1000" || lines[2] == "1000" {
			t.Fatalf("oom_score_adj of child, shell, agent: %q (stderr %q)", res.Stdout, res.Stderr)
		}
	}
}

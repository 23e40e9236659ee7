package engine

import "testing"

// TestAgentSurvivesTmpfsFill: filling /sandbox past the memory limit used to
// OOM-kill the agent ("sandbox agent stopped answering"). The writer is
// killed instead and the run reports oomKilled.
func TestAgentSurvivesTmpfsFill(t *testing.T) {
	e := newTestEngine(t, Options{MemoryLimit: "128m"})
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

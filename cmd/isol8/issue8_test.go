package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/isol8/isol8/engine"
)

// --debug prints one "[DEBUG] option" line per resolved option with where
// the value came from: flag, config file path or default.
func TestRunDebugOptionOrigins(t *testing.T) {
	h := newHarness(t)
	cfg := write(t, h.cwd, "isol8.config.json", `{"defaults":{"timeoutMs":5000}}`)
	h.fake.events = []engine.Event{{Type: "exit", Data: "0"}}
	r := h.run("run", "--debug", "-e", "1", "--memory", "1g")
	wantCode(t, r, 0)
	wantContains(t, "stderr", r.stderr,
		"[DEBUG] option name=memory value=1g from=\"flag --memory\"\n",
		"[DEBUG] option name=timeoutMs value=5000 from="+cfg+"\n",
		"[DEBUG] option name=network value=none from=default\n",
		"[DEBUG] option name=mode value=ephemeral from=default\n",
		"[DEBUG] option name=seccomp value=strict from=default\n",
		"[DEBUG] option name=poolStrategy value=fast from=default\n",
		"[DEBUG] option name=streamMaxOutput value=none from=default\n",
	)
	for _, l := range strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n") {
		if strings.Contains(l, "level=") || strings.Contains(l, "msg=") {
			t.Errorf("slog text line leaked: %q", l)
		}
	}

	// Without --debug (and no config debug) nothing of it shows.
	h2 := newHarness(t)
	h2.fake.events = []engine.Event{{Type: "exit", Data: "0"}}
	r = h2.run("run", "-e", "1")
	if strings.Contains(r.stderr, "[DEBUG]") {
		t.Fatalf("debug lines without --debug: %q", r.stderr)
	}
	// Config "debug": true turns it on too.
	h3 := newHarness(t)
	write(t, h3.cwd, "isol8.config.json", `{"debug":true}`)
	h3.fake.events = []engine.Event{{Type: "exit", Data: "0"}}
	r = h3.run("run", "-e", "1")
	wantContains(t, "stderr", r.stderr, "[DEBUG] option name=debug value=true from="+filepath.Join(h3.cwd, "isol8.config.json"))
}

// Streaming passes everything by default; --max-output caps streams too,
// and a cap that was hit is reported.
func TestRunStreamingCap(t *testing.T) {
	h := newHarness(t)
	h.fake.events = []engine.Event{{Type: "stdout", Data: "x"}, {Type: "exit", Data: "0", Truncated: true}}
	r := h.run("run", "-e", "1", "--max-output", "1")
	wantCode(t, r, 0)
	if r.stdout != "x" || r.stderr != "[WARN] Output was truncated\n" {
		t.Fatalf("stdout %q stderr %q", r.stdout, r.stderr)
	}
	if h.opts.StreamMaxOutput != 1 {
		t.Fatalf("StreamMaxOutput = %d, want 1", h.opts.StreamMaxOutput)
	}
	h2 := newHarness(t)
	h2.fake.events = []engine.Event{{Type: "exit", Data: "0"}}
	wantCode(t, h2.run("run", "-e", "1"), 0)
	if h2.opts.StreamMaxOutput != 0 {
		t.Fatalf("default StreamMaxOutput = %d, want 0 (no cap)", h2.opts.StreamMaxOutput)
	}
}

type epipeWriter struct{}

func (epipeWriter) Write([]byte) (int, error) { return 0, syscall.EPIPE }

// EPIPE on stdout ends the run with 141 and cancels the execution, in both
// modes.
func TestRunBrokenPipe(t *testing.T) {
	for _, args := range [][]string{{"run", "-e", "1"}, {"run", "-e", "1", "--no-stream"}} {
		f := &fakeEngine{
			events: []engine.Event{{Type: "stdout", Data: "x"}, {Type: "stdout", Data: "y"}, {Type: "exit", Data: "0"}},
			result: &engine.Result{Stdout: "x"},
		}
		var errb bytes.Buffer
		a := newApp(strings.NewReader(""), epipeWriter{}, &errb, map[string]string{"HOME": t.TempDir()}, t.TempDir())
		a.newEngine = func(engine.Options) (backend, error) { return f, nil }
		if code := a.run(args); code != 141 {
			t.Fatalf("%v: exit %d, stderr %q", args, code, errb.String())
		}
		if f.stopped != 1 {
			t.Fatalf("%v: engine stopped %d times", args, f.stopped)
		}
	}
}

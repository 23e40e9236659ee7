package main

import (
	"bytes"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/isol8/isol8"
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
		a.newEngine = func(engine.Options) (isol8.Engine, error) { return f, nil }
		if code := a.run(args); code != 141 {
			t.Fatalf("%v: exit %d, stderr %q", args, code, errb.String())
		}
		if f.stopped != 1 {
			t.Fatalf("%v: engine stopped %d times", args, f.stopped)
		}
	}
}

// --install with --net none is refused before any engine exists: no
// installer could reach its registry.
func TestRunInstallWithoutNetworkRefused(t *testing.T) {
	h := newHarness(t)
	r := h.run("run", "-e", "1", "--install", "numpy", "--net", "none")
	wantCode(t, r, 1)
	if want := "[ERR] " + engine.TextInstallNeedsNetwork + "\n"; r.stderr != want || h.engines != 0 {
		t.Errorf("stderr %q (engines %d), want %q", r.stderr, h.engines, want)
	}
}

// Every feature is built, so run --help shows every flag (nothing is
// hidden any more) and the filtered network among the modes.
func TestRunHelpShowsEveryFlag(t *testing.T) {
	h := newHarness(t)
	r := h.run("run", "--help")
	wantCode(t, r, 0)
	for _, shown := range []string{"--allow <regex>", "--deny <regex>", "--log-network", "none, host, filtered",
		"--install", "--url", "--github", "--gist", "--hash", "--allow-insecure-code-url",
		"--agent-flags", "--host", "--key", "--session-id"} {
		if !strings.Contains(r.stdout, shown) {
			t.Errorf("run --help does not show %q:\n%s", shown, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "not available") {
		t.Errorf("run --help still says something is not available:\n%s", r.stdout)
	}
}

// The troubleshooting messages, verbatim.
func TestRunClearErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		args  []string
		want  string
	}{
		{"memory too small", nil, []string{"-e", "1", "--memory", "1k"}, "[ERR] Invalid --memory value: \"1k\". The sandbox needs at least 8m.\n"},
		{"reserved secret", nil, []string{"-e", "1", "--secret", "PATH=/x"},
			"[ERR] --secret PATH: PATH is a reserved name (isol8 sets it in the sandbox). Reserved: PYTHONUNBUFFERED, PYTHONUSERBASE, NPM_CONFIG_PREFIX, DENO_DIR, PATH, NODE_PATH, HOME\n"},
		{"empty file", map[string]string{"e.py": " \n"}, []string{"e.py"}, "[ERR] File is empty: e.py\n"},
		{"sandbox size", nil, []string{"-e", "1", "--sandbox-size", "big"}, "[ERR] Invalid --sandbox-size value: \"big\". Use a size such as \"256m\" or \"1g\".\n"},
		{"tmp size", nil, []string{"-e", "1", "--tmp-size", "0x"}, "[ERR] Invalid --tmp-size value: \"0x\". Use a size such as \"256m\" or \"1g\".\n"},
		{"bad allow regex", nil, []string{"-e", "1", "--allow", "("}, "[ERR] Invalid --allow pattern \"(\": missing closing ): `(`\n"},
		{"bad deny regex", nil, []string{"-e", "1", "--deny", "a[b"}, "[ERR] Invalid --deny pattern \"a[b\": missing closing ]: `[b`\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			for p, c := range tc.files {
				write(t, h.cwd, p, c)
			}
			r := h.run(append([]string{"run"}, tc.args...)...)
			wantCode(t, r, 1)
			if r.stderr != tc.want || h.engines != 0 {
				t.Errorf("stderr %q (engines %d), want %q", r.stderr, h.engines, tc.want)
			}
		})
	}
}

// A too-small memory limit from the config file is refused too, naming the file.
func TestRunConfigMemoryTooSmall(t *testing.T) {
	h := newHarness(t)
	cfg := write(t, h.cwd, "isol8.config.json", `{"defaults":{"memoryLimit":"1k"}}`)
	r := h.run("run", "-e", "1")
	wantCode(t, r, 1)
	if want := "[ERR] Invalid defaults.memoryLimit \"1k\" in " + cfg + ". The sandbox needs at least 8m.\n"; r.stderr != want || h.engines != 0 {
		t.Fatalf("stderr %q, want %q", r.stderr, want)
	}
}

// Filter flags outside the filtered network warn that they do nothing.
func TestRunFilterFlagsWarn(t *testing.T) {
	h := newHarness(t)
	h.fake.events = []engine.Event{{Type: "exit", Data: "0"}}
	r := h.run("run", "-e", "1", "--allow", "^a$", "--deny", "b", "--log-network", "--net", "host")
	wantCode(t, r, 0)
	want := "[WARN] --allow has no effect with --net host (it applies to --net filtered only)\n" +
		"[WARN] --deny has no effect with --net host (it applies to --net filtered only)\n" +
		"[WARN] --log-network has no effect with --net host (it applies to --net filtered only)\n" +
		"[WARN] Sandbox weakened: host network\n" // host network is itself a weakening
	if r.stderr != want {
		t.Fatalf("stderr %q, want %q", r.stderr, want)
	}
}

// --persistent prints its session id.
func TestRunPersistentSessionID(t *testing.T) {
	h := newHarness(t)
	h.fake.events = []engine.Event{{Type: "exit", Data: "0"}}
	r := h.run("run", "--persistent", "-e", "1")
	wantCode(t, r, 0)
	want := "[Run] Session ID: cli-" + strconv.FormatInt(h.now.UnixMilli(), 10) + "\n"
	if r.stderr != want {
		t.Fatalf("stderr %q, want %q", r.stderr, want)
	}
}

// setup names the backend before building and checks prebuiltImages;
// cleanup --images shows "image <id12> | <tags>".
func TestSetupAndCleanupTell(t *testing.T) {
	h := newHarness(t)
	r := h.run("setup")
	wantCode(t, r, 0)
	if r.stderr != "[OK] Backend: containerd v2.0.0 at /run/fake.sock\n" {
		t.Errorf("setup stderr %q", r.stderr)
	}

	// prebuiltImages reach the setup; an invalid entry is refused before
	// any engine exists, naming the entry and the file.
	h = newHarness(t)
	write(t, h.cwd, "isol8.config.json", `{"prebuiltImages":[{"tag":"my:py","runtime":"python","installPackages":["numpy"," numpy"]}]}`)
	r = h.run("setup")
	wantCode(t, r, 0)
	if len(h.fake.setupOpts) != 1 || len(h.fake.setupOpts[0].Prebuilt) != 1 || h.fake.setupOpts[0].Prebuilt[0].Tag != "my:py" {
		t.Errorf("setup options %+v, want the prebuilt image my:py", h.fake.setupOpts)
	}
	for _, tc := range []struct{ entry, want string }{
		{`{"tag":"my:py","runtime":"ruby","installPackages":["numpy"]}`, `Unknown runtime: ruby`},
		{`{"tag":"my:py","runtime":"python","installPackages":["numpy; rm -rf /"]}`, `Invalid package name: "numpy; rm -rf /"`},
		{`{"tag":"isol8:python","runtime":"python","installPackages":["numpy"]}`, `is the base image of runtime python`},
		{`{"tag":"Bad Tag","runtime":"python","installPackages":["numpy"]}`, `Invalid image tag: "Bad Tag"`},
		{`{"tag":"my:py","runtime":"python","installPackages":[]}`, `No packages or setup script specified`},
	} {
		h = newHarness(t)
		cfg := write(t, h.cwd, "isol8.config.json", `{"prebuiltImages":[`+tc.entry+`]}`)
		r = h.run("setup")
		wantCode(t, r, 1)
		if !strings.HasPrefix(r.stderr, "[ERR] prebuiltImages[0]") || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, cfg) || h.engines != 0 {
			t.Errorf("%s: stderr %q (engines %d), want %q", tc.entry, r.stderr, h.engines, tc.want)
		}
	}

	h = newHarness(t)
	h.fake.found = &engine.CleanupReport{Images: []string{"isol8:node", "isol8:python", "isol8:python-old"},
		ImageIDs: map[string]string{"isol8:python": "aaaabbbbccccdddd", "isol8:python-old": "aaaabbbbccccdddd", "isol8:node": "1111222233334444"}}
	r = h.run("cleanup", "--images", "--force")
	wantCode(t, r, 0)
	wantContains(t, "stdout", r.stdout,
		"  🖼️ image 111122223333 | isol8:node\n",
		"  🖼️ image aaaabbbbcccc | isol8:python, isol8:python-old\n")
}

// Bare `isol8 run` at a terminal says it reads code from stdin; piped
// stdin with -e (or a file, or --cmd) is the program's stdin.
func TestRunStdinHandling(t *testing.T) {
	h := newHarness(t)
	h.stdinIs = stdinTerminal
	h.stdin = "print(1)"
	h.fake.events = []engine.Event{{Type: "exit", Data: "0"}}
	r := h.run("run")
	wantCode(t, r, 0)
	if r.stderr != "Reading code from stdin (end with Ctrl-D)...\n" || h.lastRequest().Code != "print(1)" || h.lastRequest().Stdin != "" {
		t.Errorf("stderr %q request %+v", r.stderr, h.lastRequest())
	}

	h = newHarness(t)
	h.stdinIs = stdinPiped
	h.stdin = "data for the program"
	h.fake.events = []engine.Event{{Type: "exit", Data: "0"}}
	r = h.run("run", "-e", "import sys; print(sys.stdin.read())")
	wantCode(t, r, 0)
	if got := h.lastRequest().Stdin; got != "data for the program" || r.stderr != "" {
		t.Errorf("stdin %q stderr %q", got, r.stderr)
	}

	// --stdin wins over piped stdin.
	h = newHarness(t)
	h.stdinIs = stdinPiped
	h.stdin = "x"
	h.fake.events = []engine.Event{{Type: "exit", Data: "0"}}
	wantCode(t, h.run("run", "-e", "1", "--stdin", "y"), 0)
	if got := h.lastRequest().Stdin; got != "y" {
		t.Errorf("stdin %q, want --stdin's", got)
	}

	// Piped code (no -e): stdin is the code, not the program's input.
	h = newHarness(t)
	h.stdinIs = stdinPiped
	h.stdin = "print(2)"
	h.fake.events = []engine.Event{{Type: "exit", Data: "0"}}
	wantCode(t, h.run("run"), 0)
	if req := h.lastRequest(); req.Code != "print(2)" || req.Stdin != "" {
		t.Errorf("request %+v", req)
	}
}

// The agent runtime runs: by name or from a .txt prompt file, with its
// defaults (pids 200, /sandbox 2g) and --agent-flags in the request.
func TestRunAgentReachesEngine(t *testing.T) {
	h := newHarness(t)
	r := h.run("run", "-r", "agent", "-e", "say hi", "--net", "host", "--agent-flags", "--model m")
	wantCode(t, r, 0)
	req := h.lastRequest()
	if req.Runtime != "agent" || req.Code != "say hi" || req.AgentFlags != "--model m" {
		t.Errorf("request %+v", req)
	}
	if h.opts.PidsLimit != 200 || h.opts.SandboxSize != "2g" || h.opts.Network != "host" {
		t.Errorf("options pids %d sandbox %q network %q", h.opts.PidsLimit, h.opts.SandboxSize, h.opts.Network)
	}
	h = newHarness(t)
	write(t, h.cwd, "prompt.txt", "say hi")
	r = h.run("run", "prompt.txt", "--net", "host", "--pids-limit", "50")
	wantCode(t, r, 0)
	if req := h.lastRequest(); req.Runtime != "agent" || req.Code != "say hi" || h.opts.PidsLimit != 50 {
		t.Errorf("request %+v pids %d", req, h.opts.PidsLimit)
	}
}

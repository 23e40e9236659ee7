package main

import (
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/isol8/isol8/engine"
)

// Items 10–14 and the rest of surface.md §1.1.1: errors that stop a run
// before any engine exists.
func TestRunSourceErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(h *harness)
		args  []string
		want  string
	}{
		{"missing file", nil, []string{"run", "/nonexistent/file.py", "--no-stream"},
			"[ERR] File not found: /nonexistent/file.py"},
		{"undetectable extension", func(h *harness) { write(t, h.cwd, "x.xyz", "1") },
			[]string{"run", "./x.xyz"}, "[ERR] Cannot detect runtime for ./x.xyz. Use --runtime to specify."},
		{"cmd with eval", nil, []string{"run", "--cmd", "echo hi", "-e", "1"},
			"[ERR] --cmd cannot be combined with file input, --eval, --url, --github, or --gist."},
		{"cmd with file", nil, []string{"run", "x.py", "--cmd", "echo hi"},
			"[ERR] --cmd cannot be combined with file input, --eval, --url, --github, or --gist."},
		{"cmd with gist", nil, []string{"run", "--cmd", "echo hi", "--gist", "a/b.py"},
			"[ERR] --cmd cannot be combined with file input, --eval, --url, --github, or --gist."},
		{"url with eval", nil, []string{"run", "--url", "https://h/a.py", "-e", "1"},
			"[ERR] --url/--github/--gist cannot be used with file input or --eval."},
		{"github with file", nil, []string{"run", "a.py", "--github", "o/r/main/a.py"},
			"[ERR] --url/--github/--gist cannot be used with file input or --eval."},
		{"github too short", nil, []string{"run", "--github", "a/b/c"},
			"[ERR] --github format must be owner/repo/ref/path/to/file"},
		{"github empty segment", nil, []string{"run", "--github", "a//c/d.py"},
			"[ERR] --github format must be owner/repo/ref/path/to/file"},
		{"gist without file", nil, []string{"run", "--gist", "abcd"},
			"[ERR] --gist format must be gistId/file.ext"},
		{"url without extension", nil, []string{"run", "--url", "https://h/script"},
			"[ERR] Cannot detect runtime from URL path. Use --runtime to specify."},
		{"session without host", nil, []string{"run", "-e", "print(1)", "--session-id", "s1"},
			"[ERR] --session-id requires --host (remote server). Session IDs are managed by the server."},
		{"out without no-stream", nil, []string{"run", "-e", "print(1)", "--out", "o.txt"},
			"[ERR] --out requires --no-stream"},
		{"files not a directory", func(h *harness) { write(t, h.cwd, "f.txt", "x") },
			[]string{"run", "-e", "1", "--files", "f.txt"}, "[ERR] --files path is not a directory: f.txt"},
		{"files missing", nil, []string{"run", "-e", "1", "--files", "nope"},
			"[ERR] --files path is not a directory: nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if tc.setup != nil {
				tc.setup(h)
			}
			r := h.run(tc.args...)
			wantCode(t, r, 1)
			if got := strings.TrimRight(r.stderr, "\n"); got != tc.want {
				t.Errorf("stderr = %q, want %q", got, tc.want)
			}
			if h.engines != 0 {
				t.Error("an engine was built")
			}
		})
	}
}

// Flag values are validated before anything starts.
func TestRunBadValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--memory", "abc"}, `[ERR] Invalid memory limit format: "abc". Use e.g. "512m", "1g".`},
		// issue 8: size errors name their own flag.
		{[]string{"--sandbox-size", "lots"}, `[ERR] Invalid --sandbox-size value: "lots". Use a size such as "256m" or "1g".`},
		{[]string{"--tmp-size", "-1m"}, `[ERR] Invalid --tmp-size value: "-1m". Use a size such as "256m" or "1g".`},
		{[]string{"--timeout", "-5"}, `[ERR] Invalid --timeout value: "-5". Expected a positive integer (ms).`},
		{[]string{"--timeout", "x"}, `[ERR] Invalid --timeout value: "x". Expected a positive integer (ms).`},
		{[]string{"--timeout", "0"}, `[ERR] Invalid --timeout value: "0". Expected a positive integer (ms).`},
		{[]string{"--timeout", "1.5"}, `[ERR] Invalid --timeout value: "1.5". Expected a positive integer (ms).`},
		{[]string{"--pids-limit", "abc"}, `[ERR] Invalid --pids-limit value: "abc". Expected a positive integer.`},
		{[]string{"--max-output", "0"}, `[ERR] Invalid --max-output value: "0". Expected a positive integer (bytes).`},
		{[]string{"--cpu", "0"}, `[ERR] Invalid --cpu value: "0". Expected a positive number (cores).`},
		{[]string{"--cpu", "NaN"}, `[ERR] Invalid --cpu value: "NaN". Expected a positive number (cores).`},
		{[]string{"--cpu", "-1"}, `[ERR] Invalid --cpu value: "-1". Expected a positive number (cores).`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			h := newHarness(t)
			h.stdin = "print(1)"
			r := h.run(append([]string{"run", "-e", "print(1)"}, tc.args...)...)
			wantCode(t, r, 1)
			if got := strings.TrimRight(r.stderr, "\n"); got != tc.want {
				t.Errorf("stderr = %q, want %q", got, tc.want)
			}
			if h.engines != 0 {
				t.Error("an engine was built")
			}
		})
	}
}

// Source resolution and request fields (surface.md §1.1.1, §1.1.3) as the
// engine receives them.
func TestRunRequest(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string // below cwd
		stdin string
		args  []string
		want  engine.Request // TimeoutMs 30000 is added unless set
	}{
		{name: "eval defaults to python", args: []string{"-e", "print(1)"},
			want: engine.Request{Runtime: "python", Code: "print(1)"}},
		{name: "eval with runtime", args: []string{"-e", "console.log(1)", "-r", "node"},
			want: engine.Request{Runtime: "node", Code: "console.log(1)"}},
		{name: "eval wins over a file", files: map[string]string{"a.js": "x"}, args: []string{"a.js", "-e", "print(2)"},
			want: engine.Request{Runtime: "python", Code: "print(2)"}},
		{name: "python file", files: map[string]string{"s.py": "print(3)\n"}, args: []string{"s.py"},
			want: engine.Request{Runtime: "python", Code: "print(3)\n", FileExtension: ".py"}},
		{name: "cjs keeps its extension", files: map[string]string{"t.cjs": "require('fs')"}, args: []string{"t.cjs"},
			want: engine.Request{Runtime: "node", Code: "require('fs')", FileExtension: ".cjs"}},
		{name: "ts is bun", files: map[string]string{"m.ts": "1"}, args: []string{"m.ts"},
			want: engine.Request{Runtime: "bun", Code: "1", FileExtension: ".ts"}},
		{name: "mts is deno", files: map[string]string{"m.mts": "1"}, args: []string{"m.mts"},
			want: engine.Request{Runtime: "deno", Code: "1", FileExtension: ".mts"}},
		{name: "sh is bash", files: map[string]string{"d/x.sh": "echo"}, args: []string{"d/x.sh"},
			want: engine.Request{Runtime: "bash", Code: "echo", FileExtension: ".sh"}},
		{name: "file without extension", files: map[string]string{"script": "echo"}, args: []string{"-r", "bash", "script"},
			// issue 8: a file runs as a file, with its runtime's extension.
			want: engine.Request{Runtime: "bash", Code: "echo", FileExtension: ".sh"}},
		{name: "options after positional", files: map[string]string{"s.py": "x"}, args: []string{"s.py", "--timeout", "500", "-r", "python"},
			want: engine.Request{Runtime: "python", Code: "x", FileExtension: ".py", TimeoutMs: 500}},
		{name: "stdin is the code", stdin: "print('hello stdin')", args: []string{"--runtime", "python"},
			want: engine.Request{Runtime: "python", Code: "print('hello stdin')"}},
		{name: "stdin defaults to python", stdin: "x", args: nil,
			want: engine.Request{Runtime: "python", Code: "x"}},
		{name: "cmd defaults to bash", args: []string{"--cmd", "echo hi"},
			want: engine.Request{Runtime: "bash", Cmd: "echo hi"}},
		{name: "cmd with runtime", args: []string{"--cmd", "echo hi", "-r", "node"},
			want: engine.Request{Runtime: "node", Cmd: "echo hi"}},
		// issue 8: --url/--github/--gist and --install are refused until
		// remote code and the filtered network exist (TestRunUnbuiltRefused).
		{name: "workdir, stdin, agent flags",
			args: []string{"-e", "1", "--workdir", "sub/dir", "--stdin", "hello-stdin", "--agent-flags", "--model m"},
			want: engine.Request{Runtime: "python", Code: "1", Workdir: "sub/dir", Stdin: "hello-stdin", AgentFlags: "--model m"}},
		{name: "setup literal and file", files: map[string]string{"setup.sh": "pip list\necho ok"},
			args: []string{"-e", "1", "--setup", "echo one", "--setup", "setup.sh", "--setup", "missing.sh"},
			want: engine.Request{Runtime: "python", Code: "1", SetupScript: "echo one\npip list\necho ok\nmissing.sh"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			for p, c := range tc.files {
				write(t, h.cwd, p, c)
			}
			h.stdin = tc.stdin
			h.fake.events = []engine.Event{{Type: engine.EventExit, Data: "0"}}
			r := h.run(append([]string{"run"}, tc.args...)...)
			wantCode(t, r, 0)
			want := tc.want
			if want.TimeoutMs == 0 {
				want.TimeoutMs = 30000
			}
			if got := h.lastRequest(); !reflect.DeepEqual(got, want) {
				t.Errorf("request =\n%#v\nwant\n%#v", got, want)
			}
			if h.fake.stopped != 1 {
				t.Errorf("engine stopped %d times, want 1", h.fake.stopped)
			}
		})
	}
}

// --files: nested files kept, skipped directories at any depth, symlinks ignored.
func TestRunFiles(t *testing.T) {
	h := newHarness(t)
	dir := filepath.Join(h.cwd, "proj")
	write(t, dir, "main.py", "print('main')")
	write(t, dir, "pkg/util/helpers.py", "X = 1")
	write(t, dir, "pkg/.git/config", "secret")
	for _, skip := range []string{".git/HEAD", "node_modules/x/index.js", "__pycache__/m.pyc", ".venv/bin/python", "venv/lib/x", ".tox/log", "a/b/node_modules/deep.js"} {
		write(t, dir, skip, "skip")
	}
	write(t, dir, "empty.txt", "")
	if err := os.Symlink(filepath.Join(dir, "main.py"), filepath.Join(dir, "link.py")); err != nil {
		t.Fatal(err)
	}
	outside := write(t, t.TempDir(), "outside.txt", "outside")
	if err := os.Symlink(filepath.Dir(outside), filepath.Join(dir, "linkdir")); err != nil {
		t.Fatal(err)
	}
	r := h.run("run", "-e", "1", "--files", "proj")
	wantCode(t, r, 0)
	want := map[string]string{
		"/sandbox/main.py":             "print('main')",
		"/sandbox/pkg/util/helpers.py": "X = 1",
		"/sandbox/empty.txt":           "",
	}
	if got := h.lastRequest().Files; !maps.Equal(got, want) {
		t.Errorf("files = %v, want %v", got, want)
	}
}

func TestRunFilesRefused(t *testing.T) {
	// issue 8: binary files are injected byte for byte (they used to be
	// refused as "not UTF-8 text").
	t.Run("binary accepted", func(t *testing.T) {
		h := newHarness(t)
		write(t, h.cwd, "d/ok.txt", "ok")
		write(t, h.cwd, "d/bin/blob.dat", "\xff\xfe\x00")
		h.fake.events = []engine.Event{{Type: "exit", Data: "0"}}
		r := h.run("run", "-e", "1", "--files", "d")
		wantCode(t, r, 0)
		if got := h.lastRequest().Files["/sandbox/bin/blob.dat"]; got != "\xff\xfe\x00" {
			t.Errorf("blob = %q", got)
		}
	})
	t.Run("too large", func(t *testing.T) {
		h := newHarness(t)
		p := write(t, h.cwd, "d/big.txt", "")
		if err := os.Truncate(p, engine.MaxFilesBytes+1); err != nil {
			t.Fatal(err)
		}
		r := h.run("run", "-e", "1", "--files", "d")
		wantCode(t, r, 1)
		wantContains(t, "stderr", r.stderr, "[ERR] --files: d holds more than", "bytes of files")
	})
}

// Streaming output and exit codes (surface.md §1.1.5).
func TestRunStreaming(t *testing.T) {
	for _, tc := range []struct {
		name   string
		events []engine.Event
		code   int
		stdout string
		stderr string
	}{
		{"output raw", []engine.Event{
			{Type: "stdout", Data: "a"}, {Type: "stderr", Data: "warn\n"}, {Type: "stdout", Data: "b\n"},
			{Type: "exit", Data: "0"}}, 0, "ab\n", "warn\n"},
		{"exit code", []engine.Event{{Type: "stdout", Data: "x"}, {Type: "exit", Data: "42"}}, 42, "x", ""},
		{"timeout error then exit 137", []engine.Event{{Type: "error", Data: "EXECUTION TIMED OUT"}, {Type: "exit", Data: "137"}},
			137, "", "[ERR] EXECUTION TIMED OUT\n"},
		{"setup failure", []engine.Event{{Type: "error", Data: "Setup script failed (exit code 3)", Phase: "setup"}, {Type: "exit", Data: "3"}},
			3, "", "[ERR] Setup script failed (exit code 3)\n"},
		{"error without exit", []engine.Event{{Type: "error", Data: "boom"}}, 1, "", "[ERR] boom\n"},
		{"exit 0 does not clear an error", []engine.Event{{Type: "error", Data: "boom"}, {Type: "exit", Data: "0"}}, 1, "", "[ERR] boom\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.fake.events = tc.events
			r := h.run("run", "-e", "1")
			wantCode(t, r, tc.code)
			if r.stdout != tc.stdout || r.stderr != tc.stderr {
				t.Errorf("stdout, stderr = %q, %q; want %q, %q", r.stdout, r.stderr, tc.stdout, tc.stderr)
			}
			if h.fake.stopped != 1 {
				t.Errorf("engine stopped %d times, want 1", h.fake.stopped)
			}
		})
	}
}

// Buffered output (--no-stream, surface.md §1.1.5).
func TestRunBuffered(t *testing.T) {
	for _, tc := range []struct {
		name   string
		result engine.Result
		code   int
		stdout string
		stderr string
	}{
		{"stdout", engine.Result{Stdout: "1"}, 0, "1\n", ""},
		{"stderr and exit code", engine.Result{Stdout: "out", Stderr: "error!", ExitCode: 42}, 42, "out\n", "error!\n"},
		{"empty", engine.Result{}, 0, "", ""},
		{"truncated", engine.Result{Stdout: "xx", Truncated: true}, 0, "xx\n", "[WARN] Output was truncated\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.fake.result = &tc.result
			r := h.run("run", "-e", "1", "--no-stream")
			wantCode(t, r, tc.code)
			if r.stdout != tc.stdout || r.stderr != tc.stderr {
				t.Errorf("stdout, stderr = %q, %q; want %q, %q", r.stdout, r.stderr, tc.stdout, tc.stderr)
			}
		})
	}
}

func TestRunOutFile(t *testing.T) {
	h := newHarness(t)
	h.fake.result = &engine.Result{Stdout: "line1\nline2"}
	r := h.run("run", "-e", "1", "--no-stream", "--out", "out.txt")
	wantCode(t, r, 0)
	data, err := os.ReadFile(filepath.Join(h.cwd, "out.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "line1\nline2" {
		t.Errorf("out.txt = %q", data)
	}
	if r.stdout != "line1\nline2\n" || r.stderr != "[Run] Output written to out.txt\n" {
		t.Errorf("stdout, stderr = %q, %q", r.stdout, r.stderr)
	}
}

// Engine errors, at construction or execution, are printed as [ERR].
func TestRunEngineErrors(t *testing.T) {
	// issue 8: remote code is refused by the CLI itself now; any engine
	// refusal during a stream shows the same way.
	refused := errdefs.ErrInvalidArgument.WithMessage("Cannot switch runtime from \"python\" to \"node\".")
	for _, tc := range []struct {
		name    string
		newErr  error
		execErr error
		args    []string
		want    string
		stopped int
	}{
		{"new", errdefs.ErrInvalidArgument.WithMessage("Unknown network mode: \"bogus\". Expected none, host or filtered"), nil,
			[]string{"-e", "1", "--net", "bogus"}, "[ERR] Unknown network mode: \"bogus\". Expected none, host or filtered\n", 0},
		{"stream", nil, refused, []string{"-e", "1"},
			"[ERR] Cannot switch runtime from \"python\" to \"node\".\n", 1},
		{"buffered", nil, errors.New("containerd unreachable at /run/x.sock: start it or install it"), []string{"-e", "1", "--no-stream"},
			"[ERR] containerd unreachable at /run/x.sock: start it or install it\n", 1},
		{"workdir refused", nil, errdefs.ErrInvalidArgument.WithMessage("Working directory must be inside /sandbox"),
			[]string{"-e", "1", "--workdir", "/etc"}, "[ERR] Working directory must be inside /sandbox\n", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.newErr = tc.newErr
			h.fake.execErr = tc.execErr
			r := h.run(append([]string{"run"}, tc.args...)...)
			wantCode(t, r, 1)
			if r.stderr != tc.want {
				t.Errorf("stderr = %q, want %q", r.stderr, tc.want)
			}
			if h.fake.stopped != tc.stopped {
				t.Errorf("engine stopped %d times, want %d", h.fake.stopped, tc.stopped)
			}
		})
	}
}

// SIGINT/SIGTERM during a run cancel it, stop the engine and exit 130/143.
func TestRunInterrupted(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sig    syscall.Signal
		stream bool
		code   int
	}{
		{"SIGINT streaming", syscall.SIGINT, true, 130},
		{"SIGTERM streaming", syscall.SIGTERM, true, 143},
		{"SIGINT buffered", syscall.SIGINT, false, 130},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.fake.block = true
			h.fake.started = make(chan struct{})
			h.notify = func(c chan<- os.Signal) {
				go func() {
					<-h.fake.started
					c <- tc.sig
				}()
			}
			args := []string{"run", "-e", "import time; time.sleep(60)"}
			if !tc.stream {
				args = append(args, "--no-stream")
			}
			done := make(chan cliResult, 1)
			go func() { done <- h.run(args...) }()
			select {
			case r := <-done:
				wantCode(t, r, tc.code)
				if r.stderr != "" {
					t.Errorf("stderr = %q, want empty", r.stderr)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("run did not end after the signal")
			}
			if h.fake.stopped != 1 {
				t.Errorf("engine stopped %d times, want 1", h.fake.stopped)
			}
		})
	}
}

// Engine options of a run: wiring and flags reaching engine.New.
func TestRunEngineOptions(t *testing.T) {
	h := newHarness(t)
	write(t, h.home, ".isol8/config.json", `{"maxConcurrent":4,"containerd":{"address":"/cfg.sock","runtime":"crun"}}`)
	r := h.run("run", "-e", "1", "--secret", "MY_KEY=supersecret123", "--secret", "B=x=y", "--secret", "junk",
		"--writable", "--persist", "--log-network", "--image", "img:1", "--persistent")
	wantCode(t, r, 0)
	o := h.opts
	if o.Containerd.Address != "/cfg.sock" || o.Containerd.RuntimeBinary != "crun" {
		t.Errorf("containerd = %+v", o.Containerd)
	}
	if o.Progress == nil || o.Logger == nil {
		t.Error("progress or logger not wired")
	}
	if !maps.Equal(o.Secrets, map[string]string{"MY_KEY": "supersecret123", "B": "x=y"}) {
		t.Errorf("secrets = %v", o.Secrets)
	}
	if o.ReadonlyRootFs == nil || *o.ReadonlyRootFs {
		t.Error("--writable did not make the root filesystem writable")
	}
	if !o.Persist || !o.LogNetwork || o.Image != "img:1" || o.Mode != engine.ModePersistent || o.MaxConcurrent != 4 {
		t.Errorf("options = %+v", o)
	}

	t.Run("address precedence", func(t *testing.T) {
		h := newHarness(t)
		write(t, h.home, ".isol8/config.json", `{"containerd":{"address":"/cfg.sock"}}`)
		h.env["CONTAINERD_ADDRESS"] = "/env.sock"
		h.run("run", "-e", "1")
		if got := h.opts.Containerd.Address; got != "/env.sock" {
			t.Errorf("address with env = %q", got)
		}
		h.run("--containerd-address", "/flag.sock", "run", "-e", "1")
		if got := h.opts.Containerd.Address; got != "/flag.sock" {
			t.Errorf("address with flag = %q", got)
		}
	})
	t.Run("driver precedence", func(t *testing.T) {
		// The Docker driver is wired as a factory; containerd is the
		// library's default (no factory).
		h := newHarness(t)
		write(t, h.home, ".isol8/config.json", `{"driver":"docker"}`)
		h.run("run", "-e", "1")
		if h.opts.NewDriver == nil {
			t.Error("config driver docker not wired")
		}
		h.env["ISOL8_DRIVER"] = "containerd"
		h.run("run", "-e", "1")
		if h.opts.NewDriver != nil {
			t.Error("ISOL8_DRIVER=containerd did not beat the config")
		}
		h.run("--driver", "docker", "run", "-e", "1")
		if h.opts.NewDriver == nil {
			t.Error("--driver docker did not beat ISOL8_DRIVER")
		}
		r := h.run("--driver", "podman", "run", "-e", "1")
		wantContains(t, "stderr", r.stderr, `Invalid driver: "podman". Use containerd or docker.`)
		if r.code == 0 {
			t.Error("an unknown driver was accepted")
		}
	})
	t.Run("debug progress line", func(t *testing.T) {
		h := newHarness(t)
		r := h.run("run", "-e", "1", "--debug")
		wantContains(t, "stderr", r.stderr, "[CLI] Command: run", "- Starting execution...")
		if !h.opts.Debug {
			t.Error("--debug did not reach the engine")
		}
		r = h.run("run", "-e", "1")
		if strings.Contains(r.stderr, "Starting execution") {
			t.Errorf("progress line without --debug: %q", r.stderr)
		}
	})
}

// Items 8, 9 and 20: remote mode resolves the API key, then reports that
// remote execution is not available yet.
func TestRunRemote(t *testing.T) {
	const keyRequired = "[ERR] API key required. Use --key, ISOL8_API_KEY env var, or `isol8 login`.\n"
	const expired = "[WARN] Stored credentials have expired. Run `isol8 login` to re-authenticate.\n"
	// A stand-in server on loopback records the key it was given and
	// answers every stream with exit 0 (key resolution is the CLI's logic;
	// the real server is tested in package server).
	var mu sync.Mutex
	var gotKey string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotKey = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		mu.Unlock()
		switch r.URL.Path {
		case "/execute/stream":
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: {\"type\":\"stdout\",\"data\":\"1\\n\"}\n\ndata: {\"type\":\"exit\",\"data\":\"0\"}\n\n")
		case "/session/s1", "/execute":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"ok":true}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	host := srv.URL
	future := `"2026-03-02T12:00:00.000Z"`
	past := `"2026-02-28T12:00:00.000Z"`
	for _, tc := range []struct {
		name    string
		creds   string // credentials.json, "" for none
		env     string // ISOL8_API_KEY
		args    []string
		want    string // stderr
		wantKey string // key the server got ("" when refused locally)
	}{
		{"no key", "", "", []string{"--host", "http://localhost:9999", "--no-stream"}, keyRequired, ""},
		{"empty env key", "", "", []string{"--host", "http://localhost:9999"}, keyRequired, ""},
		{"flag key", "", "", []string{"--host", host, "--key", "k"}, "", "k"},
		{"env key", "", "envkey", []string{"--host", host}, "", "envkey"},
		{"stored for host", `{"host":"` + host + `","token":"t","expiresAt":` + future + `}`, "", []string{"--host", host + "/"}, "", "t"},
		{"stored with slash", `{"host":"` + host + `/","token":"t","expiresAt":` + future + `}`, "", []string{"--host", host}, "", "t"},
		{"stored epoch ms", `{"host":"` + host + `","token":"t","expiresAt":1900000000000}`, "", []string{"--host", host}, "", "t"},
		{"stored for another host", `{"host":"http://other","token":"t","expiresAt":` + future + `}`, "", []string{"--host", host}, keyRequired, ""},
		{"stored expired", `{"host":"` + host + `","token":"t","expiresAt":` + past + `}`, "", []string{"--host", host}, expired + keyRequired, ""},
		{"session id with host", "", "", []string{"--host", host, "--key", "k", "--session-id", "s1"}, "[Run] Session ID: s1\n", "k"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if tc.creds != "" {
				write(t, h.home, ".isol8/credentials.json", tc.creds)
			}
			h.env["ISOL8_API_KEY"] = tc.env
			mu.Lock()
			gotKey = ""
			mu.Unlock()
			r := h.run(append([]string{"run", "-e", "print(1)"}, tc.args...)...)
			if tc.wantKey == "" {
				wantCode(t, r, 1)
			} else {
				wantCode(t, r, 0)
				if r.stdout != "1\n" {
					t.Errorf("stdout = %q", r.stdout)
				}
			}
			if r.stderr != tc.want {
				t.Errorf("stderr = %q, want %q", r.stderr, tc.want)
			}
			mu.Lock()
			if gotKey != tc.wantKey {
				t.Errorf("server got key %q, want %q", gotKey, tc.wantKey)
			}
			mu.Unlock()
			if h.engines != 0 {
				t.Error("a local engine was built for --host")
			}
		})
	}
}

// Item 20: key order --key > ISOL8_API_KEY > stored credentials.
func TestResolveAPIKey(t *testing.T) {
	h := newHarness(t)
	write(t, h.home, ".isol8/credentials.json", `{"host":"http://h","token":"stored","expiresAt":"2030-01-01T00:00:00Z","keyId":"id"}`)
	a := newApp(strings.NewReader(""), new(strings.Builder), new(strings.Builder), map[string]string{}, h.cwd)
	a.home = h.home
	a.now = func() time.Time { return h.now }
	for _, tc := range []struct {
		flag, env, want string
	}{
		{"flag", "env", "flag"},
		{"", "env", "env"},
		{"", "", "stored"},
	} {
		a.env = map[string]string{"ISOL8_API_KEY": tc.env}
		got, err := a.resolveAPIKey("http://h/", tc.flag)
		if err != nil || got != tc.want {
			t.Errorf("resolveAPIKey(flag %q, env %q) = %q, %v; want %q", tc.flag, tc.env, got, err, tc.want)
		}
	}
}

func TestSkippedDirsList(t *testing.T) {
	want := []string{".git", ".tox", ".venv", "__pycache__", "node_modules", "venv"}
	if got := slices.Sorted(maps.Keys(skippedDirs)); !slices.Equal(got, want) {
		t.Errorf("skipped dirs = %v, want %v", got, want)
	}
}

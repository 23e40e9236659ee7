package engine

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/isol8/isol8/internal/logfmt"
)

// A file runs as a file: __file__ / import.meta name it, .mjs and .mts are
// ES modules, and a UTF-8 BOM is accepted. Before, a file's content ran
// inline (python3 -c: __file__ undefined, BOM a syntax error; node -e: .mjs
// as CommonJS).
func TestFileRunsAsFile(t *testing.T) { matrix(t, testFileRunsAsFile) }

func testFileRunsAsFile(t *testing.T, b backend) {
	e := b.engine(t, Options{PoolSize: noPool})
	const bom = "\ufeff"
	cases := []struct {
		name, runtime, ext, code, want string
	}{
		{"python __file__", "python", ".py", "print(__file__)", "/sandbox/main.py"},
		{"python BOM", "python", ".py", bom + "print('bom ok')", "bom ok"},
		{"node cjs __filename", "node", ".js", "console.log(__filename, typeof require)", "/sandbox/main.js function"},
		{"node mjs is ESM", "node", ".mjs", "console.log(import.meta.url, typeof require)", "file:///sandbox/main.mjs undefined"},
		{"node BOM", "node", ".js", bom + "console.log('bom ok')", "bom ok"},
		{"bun import.meta.path", "bun", ".ts", "const n: number = 1; console.log(import.meta.path, n)", "/sandbox/main.ts 1"},
		{"bun BOM", "bun", ".ts", bom + "console.log('bom ok')", "bom ok"},
		{"deno mts is ESM", "deno", ".mts", "console.log(import.meta.url, import.meta.main)", "file:///sandbox/main.mts true"},
		{"deno BOM", "deno", ".mts", bom + "console.log('bom ok')", "bom ok"},
		{"bash $0", "bash", ".sh", "echo $0", "/sandbox/main.sh"},
		{"bash BOM", "bash", ".sh", bom + "echo bom ok", "bom ok"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mustHaveImage(t, e, tc.runtime)
			res := run(t, e, Request{Runtime: tc.runtime, Code: tc.code, FileExtension: tc.ext})
			if res.ExitCode != 0 || res.Stdout != tc.want {
				t.Fatalf("exit %d stdout %q stderr %q; want %q", res.ExitCode, res.Stdout, res.Stderr, tc.want)
			}
		})
	}
}

// Inline code stays inline where the runtime allows it.
func TestInlineStaysInline(t *testing.T) {
	e := newTestEngine(t, Options{PoolSize: noPool})
	mustHaveImage(t, e, "python")
	res := run(t, e, Request{Runtime: "python", Code: "import sys; print(sys.argv[0]); import os; print(os.path.exists('/sandbox/main.py'))"})
	if res.Stdout != "-c\nFalse" {
		t.Fatalf("stdout %q", res.Stdout)
	}
}

// Persistent mode writes each execution's code to its own exec_<ms><ext>.
func TestPersistentRunsFiles(t *testing.T) { matrix(t, testPersistentRunsFiles) }

func testPersistentRunsFiles(t *testing.T, b backend) {
	e := b.engine(t, Options{Mode: ModePersistent})
	mustHaveImage(t, e, "python")
	first := run(t, e, Request{Runtime: "python", Code: "print(__file__)"})
	second := run(t, e, Request{Runtime: "python", Code: "import glob; print(__file__); print(len(glob.glob('/sandbox/exec_*.py')))"})
	if !strings.HasPrefix(first.Stdout, "/sandbox/exec_") || !strings.HasSuffix(first.Stdout, ".py") {
		t.Fatalf("first __file__ %q (stderr %q)", first.Stdout, first.Stderr)
	}
	lines := strings.Split(second.Stdout, "\n")
	if len(lines) != 2 || lines[0] == first.Stdout || lines[1] != "2" {
		t.Fatalf("second run %q (first %q)", second.Stdout, first.Stdout)
	}
}

// The engine refuses what is not built yet with the CLI's words.
func TestPlanRefusesUnbuilt(t *testing.T) {
	e, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		req  Request
		want string
	}{
		{Request{Runtime: "python", Code: "1", InstallPackages: []string{"numpy"}}, TextInstallNeedsNetwork},
		{Request{Runtime: "agent", Code: "hi"}, TextAgentNeedsNetwork},
		{Request{Runtime: "ruby", Code: "1"}, `Unknown runtime: "ruby". Available: python, node, bun, bash, deno, agent`},
	} {
		_, err := e.plan(tc.req)
		if err == nil || err.Error() != tc.want || !errdefs.IsInvalidArgument(err) {
			t.Errorf("%+v: err %v, want %q", tc.req, err, tc.want)
		}
	}
}

// Debug events of a warm pool: the second execution is a hit, after a reset.
func TestDebugPoolEvents(t *testing.T) {
	var buf syncBuffer
	e := newTestEngine(t, Options{PoolSize: &PoolSize{Clean: 1, Dirty: 1},
		Logger: slog.New(logfmt.New(&buf, slog.LevelDebug))})
	mustHaveImage(t, e, "python")
	run(t, e, Request{Runtime: "python", Code: "print(1)"})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), "[DEBUG] sandbox reset container=") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	run(t, e, Request{Runtime: "python", Code: "print(2)"})
	for _, want := range []string{"[DEBUG] pool acquire result=miss ", "[DEBUG] sandbox reset container=",
		"[DEBUG] pool acquire result=hit ", "[DEBUG] execution done container="} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, buf.String())
		}
	}
}

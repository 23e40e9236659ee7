package runtimes

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

// sp is the system prompt exactly as surface.md §3.3 states it.
const sp = "You are running inside an isol8 sandbox — a Docker container with strict resource limits and controlled network access. isol8 exists to execute untrusted code safely: outbound network is filtered to a whitelist, the filesystem is ephemeral, and some system calls are restricted. Work within these constraints: do not assume open internet access, do not rely on persistent state across runs, and do not attempt to escape the sandbox."

func mustGet(t *testing.T, name string) *Runtime {
	t.Helper()
	r, err := Get(name)
	if err != nil {
		t.Fatalf("Get(%q): %v", name, err)
	}
	return r
}

func TestNames(t *testing.T) {
	want := []string{"python", "node", "bun", "bash", "deno", "agent"}
	if got := Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	all := All()
	all[0].Image = "mutated"
	if r := mustGet(t, "python"); r.Image != "isol8:python" {
		t.Fatalf("All() aliases the registry: python image %q", r.Image)
	}
}

func TestGet(t *testing.T) {
	const avail = ". Available: python, node, bun, bash, deno, agent"
	tests := []struct {
		name      string
		image     string
		ext       string
		wantError string
	}{
		{name: "python", image: "isol8:python", ext: ".py"},
		{name: "node", image: "isol8:node", ext: ".mjs"},
		{name: "bun", image: "isol8:bun", ext: ".ts"},
		{name: "bash", image: "isol8:bash", ext: ".sh"},
		{name: "deno", image: "isol8:deno", ext: ".mts"},
		{name: "agent", image: "isol8:agent", ext: ".txt"},
		{name: "rust", wantError: `Unknown runtime: "rust"` + avail},
		{name: "", wantError: `Unknown runtime: ""` + avail},
		{name: "Python", wantError: `Unknown runtime: "Python"` + avail},
		{name: "python ", wantError: `Unknown runtime: "python "` + avail},
		{name: "../python", wantError: `Unknown runtime: "../python"` + avail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Get(tt.name)
			if tt.wantError != "" {
				if err == nil || err.Error() != tt.wantError {
					t.Fatalf("Get(%q) error = %v, want %q", tt.name, err, tt.wantError)
				}
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("Get(%q) error is not invalid-argument", tt.name)
				}
				return
			}
			if err != nil {
				t.Fatalf("Get(%q): %v", tt.name, err)
			}
			if r.Name != tt.name || r.Image != tt.image || r.Ext != tt.ext {
				t.Fatalf("Get(%q) = %+v, want image %q ext %q", tt.name, r, tt.image, tt.ext)
			}
		})
	}
}

func TestDetect(t *testing.T) {
	const known = ". Known extensions: .py, .mjs, .js, .cjs, .ts, .sh, .mts, .txt"
	tests := []struct {
		file      string
		want      string
		wantError string
	}{
		{file: "script.py", want: "python"},
		{file: "app.js", want: "node"},
		{file: "lib.cjs", want: "node"},
		{file: "mod.mjs", want: "node"},
		{file: "main.ts", want: "bun"},
		{file: "main.mts", want: "deno"},
		{file: "run.sh", want: "bash"},
		{file: "prompt.txt", want: "agent"},
		{file: "/a/b.c/d.py", want: "python"},
		{file: "archive.tar.sh", want: "bash"},
		{file: ".py", want: "python"},
		{file: "file.xyz", wantError: `Cannot detect runtime for "file.xyz"` + known},
		{file: "noext", wantError: `Cannot detect runtime for "noext"` + known},
		{file: "", wantError: `Cannot detect runtime for ""` + known},
		{file: "trailing.", wantError: `Cannot detect runtime for "trailing."` + known},
		{file: "UPPER.PY", wantError: `Cannot detect runtime for "UPPER.PY"` + known},
		{file: "x.py.bak", wantError: `Cannot detect runtime for "x.py.bak"` + known},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := Detect(tt.file)
			if tt.wantError != "" {
				if err == nil || err.Error() != tt.wantError || !errdefs.IsInvalidArgument(err) {
					t.Fatalf("Detect(%q) = %q, %v; want error %q", tt.file, got, err, tt.wantError)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Detect(%q) = %q, %v; want %q", tt.file, got, err, tt.want)
			}
		})
	}
}

func TestCommands(t *testing.T) {
	const code = "print('hi')"
	const file = "/sandbox/main.x"
	tests := []struct {
		runtime  string
		inline   []string // nil: no inline form
		fileArgv []string
	}{
		{runtime: "python", inline: []string{"python3", "-c", code}, fileArgv: []string{"python3", file}},
		{runtime: "node", inline: []string{"node", "-e", code}, fileArgv: []string{"node", file}},
		{runtime: "bun", inline: []string{"bun", "-e", code}, fileArgv: []string{"bun", "run", file}},
		{runtime: "bash", inline: []string{"bash", "-c", code}, fileArgv: []string{"bash", file}},
		{runtime: "deno", fileArgv: []string{"deno", "run", "--allow-read=/sandbox,/tmp",
			"--allow-write=/sandbox,/tmp", "--allow-env", "--allow-net", file}},
	}
	for _, tt := range tests {
		t.Run(tt.runtime, func(t *testing.T) {
			r := mustGet(t, tt.runtime)
			got, ok := r.InlineArgv(code)
			if ok != (tt.inline != nil) || !slices.Equal(got, tt.inline) {
				t.Errorf("InlineArgv = %q, %v; want %q", got, ok, tt.inline)
			}
			if got := r.FileArgv(file); !slices.Equal(got, tt.fileArgv) {
				t.Errorf("FileArgv = %q, want %q", got, tt.fileArgv)
			}
			if got, ok := r.Argv(code, file, "--ignored"); !ok || !slices.Equal(got, tt.fileArgv) {
				t.Errorf("Argv(with file) = %q, %v; want %q", got, ok, tt.fileArgv)
			}
			got, ok = r.Argv(code, "", "")
			if ok != (tt.inline != nil) || !slices.Equal(got, tt.inline) {
				t.Errorf("Argv(no file) = %q, %v; want %q", got, ok, tt.inline)
			}
		})
	}
}

func TestCmdArgv(t *testing.T) {
	for _, cmd := range []string{"echo hi", "", "exit 42; rm -rf /", "a\x00b"} {
		if got := CmdArgv(cmd); !slices.Equal(got, []string{"bash", "-c", cmd}) {
			t.Errorf("CmdArgv(%q) = %q", cmd, got)
		}
	}
}

func TestAgentCommand(t *testing.T) {
	const pre = "pi --no-session --append-system-prompt '" + sp + "' "
	tests := []struct {
		name   string
		prompt string
		flags  string
		want   string
	}{
		{name: "plain", prompt: "Write hello world", want: pre + "-p 'Write hello world'"},
		{name: "quote", prompt: "it's", want: pre + `-p 'it'\''s'`},
		{name: "empty prompt", prompt: "", want: pre + "-p ''"},
		{name: "flags", prompt: "hi", flags: "--model m --thinking", want: pre + "--model m --thinking -p 'hi'"},
		{name: "empty flags", prompt: "hi", flags: "", want: pre + "-p 'hi'"},
		{name: "shell metachars stay quoted", prompt: "$(id) `id` ; rm -rf / \"x\" \\",
			want: pre + "-p '$(id) `id` ; rm -rf / \"x\" \\'"},
		{name: "only quotes", prompt: "''", want: pre + `-p ''\'''\'''`},
		{name: "newlines", prompt: "a\nb", want: pre + "-p 'a\nb'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := []string{"bash", "-c", tt.want}
			if got := AgentArgv(tt.prompt, tt.flags); !slices.Equal(got, want) {
				t.Fatalf("AgentArgv = %q\nwant %q", got, want)
			}
			r := mustGet(t, "agent")
			// The file path is ignored: the prompt is always inline.
			if got, ok := r.Argv(tt.prompt, "/sandbox/main.txt", tt.flags); !ok || !slices.Equal(got, want) {
				t.Fatalf("Argv = %q, %v\nwant %q", got, ok, want)
			}
			if tt.flags == "" {
				if got, ok := r.InlineArgv(tt.prompt); !ok || !slices.Equal(got, want) {
					t.Fatalf("InlineArgv = %q, %v\nwant %q", got, ok, want)
				}
			}
		})
	}
	if got := strings.Count(AgentArgv("x", "")[2], "  "); got != 0 {
		t.Fatalf("empty agentFlags produced %d double spaces", got)
	}
	if r := mustGet(t, "agent"); r.Ext != ".txt" {
		t.Fatalf("agent ext = %q", r.Ext)
	}
	if AgentSystemPrompt != sp {
		t.Fatalf("AgentSystemPrompt drifted from surface.md §3.3")
	}
}

func TestShellQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "''"},
		{"abc", "'abc'"},
		{"it's", `'it'\''s'`},
		{"'", `''\'''`},
		{"a b;c|d&e$f`g", "'a b;c|d&e$f`g'"},
	}
	for _, tt := range tests {
		if got := ShellQuote(tt.in); got != tt.want {
			t.Errorf("ShellQuote(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestResolveWorkdir(t *testing.T) {
	const outside = "Working directory must be inside /sandbox"
	long := "/sandbox/" + strings.Repeat("a/", 3000)
	tests := []struct {
		name      string
		in        string
		want      string
		wantError string
	}{
		{name: "empty", in: "", want: "/sandbox"},
		{name: "relative", in: "subdir", want: "/sandbox/subdir"},
		{name: "nested relative", in: "a/b/c", want: "/sandbox/a/b/c"},
		{name: "absolute inside", in: "/sandbox/project", want: "/sandbox/project"},
		{name: "dot", in: ".", want: "/sandbox"},
		{name: "dotdot inside", in: "/sandbox/a/../b", want: "/sandbox/b"},
		{name: "sandbox itself", in: "/sandbox", want: "/sandbox"},
		{name: "trailing slash", in: "/sandbox/x/", want: "/sandbox/x"},
		{name: "double slashes", in: "//sandbox//x", want: "/sandbox/x"},
		{name: "relative dotdot stays", in: "a/../b", want: "/sandbox/b"},
		{name: "dots name", in: "...", want: "/sandbox/..."},
		{name: "escape relative", in: "../../etc", wantError: outside},
		{name: "escape one", in: "..", wantError: outside},
		{name: "etc passwd", in: "/etc/passwd", wantError: outside},
		{name: "root", in: "/", wantError: outside},
		{name: "etc", in: "/etc", wantError: outside},
		{name: "escape absolute", in: "/sandbox/../etc", wantError: outside},
		{name: "sibling prefix", in: "/sandbox2", wantError: outside},
		{name: "sibling prefix nested", in: "/sandbox2/x", wantError: outside},
		{name: "sibling relative", in: "../sandbox2", wantError: outside},
		{name: "tmp", in: "/tmp", wantError: outside},
		{name: "nul", in: "sub\x00dir", wantError: "Working directory must not contain NUL bytes"},
		{name: "nul escape", in: "/sandbox/\x00/../../etc", wantError: "Working directory must not contain NUL bytes"},
		{name: "very long", in: long, wantError: "Working directory is too long"},
		{name: "very long escape", in: strings.Repeat("../", 5000) + "etc", wantError: outside},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolveWorkdir(tt.in)
			if tt.wantError != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantError) || !errdefs.IsInvalidArgument(err) {
					t.Fatalf("ResolveWorkdir(%q) = %q, %v; want error %q", tt.in, got, err, tt.wantError)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ResolveWorkdir(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestValidateEnvName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"PATH", true},
		{"_x", true},
		{"a1_B2", true},
		{"", false},
		{"1ABC", false},
		{"A-B", false},
		{"A=B", false},
		{"A B", false},
		{"A\x00B", false},
		{"Ä", false},
		{"A\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateEnvName(tt.name)
			if tt.ok {
				if err != nil {
					t.Fatalf("ValidateEnvName(%q): %v", tt.name, err)
				}
				return
			}
			want := `Invalid environment variable name: ` + strconv.Quote(tt.name)
			if err == nil || err.Error() != want || !errdefs.IsInvalidArgument(err) {
				t.Fatalf("ValidateEnvName(%q) = %v, want %q", tt.name, err, want)
			}
		})
	}
}

func TestBaseEnv(t *testing.T) {
	want := []string{
		"PYTHONUNBUFFERED=1",
		"PYTHONUSERBASE=/sandbox/.local",
		"NPM_CONFIG_PREFIX=/sandbox/.npm-global",
		"DENO_DIR=/sandbox/.deno",
		"PATH=/sandbox/.local/bin:/sandbox/.npm-global/bin:/sandbox/.bun-global/bin:/usr/local/bin:/usr/bin:/bin",
		"NODE_PATH=/usr/local/lib/node_modules:/sandbox/.npm-global/lib/node_modules:/sandbox/node_modules",
		"HOME=/sandbox",
	}
	got := BaseEnv()
	if !slices.Equal(got, want) {
		t.Fatalf("BaseEnv() = %q\nwant %q", got, want)
	}
	got[0] = "mutated"
	if BaseEnv()[0] != want[0] {
		t.Fatal("BaseEnv returns shared state")
	}
	const setup = "/sandbox/.local/bin:/sandbox/.npm-global/bin:/sandbox/.bun-global/bin:/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
	if SetupPath() != setup {
		t.Fatalf("SetupPath() = %q", SetupPath())
	}
}

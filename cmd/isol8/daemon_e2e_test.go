package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/isol8/isol8/internal/testenv"
)

const daemonKey = "daemon-test-key"

// daemon is an `isol8 serve` process on a free loopback port and a unix
// socket.
type daemon struct {
	cmd  *exec.Cmd
	sock string
	port int
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startDaemon starts `isol8 serve`; when the test ends it sends SIGTERM
// and checks a clean exit that left none of its sandboxes behind.
func startDaemon(t *testing.T) *daemon {
	t.Helper()
	testenv.MustHaveRoot(t)
	d := &daemon{sock: filepath.Join(t.TempDir(), "isol8.sock"), port: freePort(t)}
	d.cmd = isol8Cmd(t, "", "serve", "--port", strconv.Itoa(d.port), "--key", daemonKey, "--listen", "unix://"+d.sock)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	d.cmd.Stdout = w
	stderr := &strings.Builder{}
	d.cmd.Stderr = stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	ready := make(chan string, 1)
	go func() {
		br := bufio.NewReader(r)
		l, _ := br.ReadString('\n')
		ready <- l
		io.Copy(io.Discard, br)
	}()
	select {
	case l := <-ready:
		if !strings.Contains(l, fmt.Sprintf("listening on http://localhost:%d", d.port)) {
			d.cmd.Process.Kill()
			t.Fatalf("serve said %q; stderr %s", l, stderr)
		}
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		t.Fatalf("serve never listened; stderr %s", stderr)
	}
	if st, err := os.Stat(d.sock); err != nil || st.Mode().Perm() != 0o660 {
		t.Errorf("socket %v mode %v", err, st)
	}
	t.Cleanup(func() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- d.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve exit: %v; stderr %s", err, stderr)
			}
		case <-time.After(60 * time.Second):
			d.cmd.Process.Kill()
			t.Error("serve did not stop on SIGTERM")
		}
		if left := containersOf(t, d.cmd.Process.Pid); len(left) > 0 {
			t.Errorf("serve left its sandboxes: %v", left)
		}
		if _, err := os.Stat(d.sock); err == nil {
			t.Error("socket file left behind")
		}
	})
	return d
}

func (d *daemon) host() string { return "unix://" + d.sock }

// get reads a server route over the unix socket.
func (d *daemon) get(t *testing.T, path string) string {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.sock)
	}}}
	req, _ := http.NewRequest("GET", "http://unix"+path, nil)
	req.Header.Set("Authorization", "Bearer "+daemonKey)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// `isol8 run --host unix://…` behaves like a local run: output, exit
// codes, errors, sessions, Ctrl-C.
func TestE2EDaemonRun(t *testing.T) {
	d := startDaemon(t)
	remote := func(args ...string) e2eResult {
		return runCLI(t, "", append([]string{"run", "--host", d.host(), "--key", daemonKey}, args...)...)
	}
	for rt, code := range map[string]string{
		"python": `print("hi from python")`, "node": `console.log("hi from node")`, "bun": `console.log("hi from bun")`,
		"deno": `console.log("hi from deno")`, "bash": `echo "hi from bash"`,
	} {
		r := remote("-r", rt, "-e", code)
		if r.code != 0 || r.stdout != "hi from "+rt+"\n" {
			t.Errorf("%s: %+v", rt, r)
		}
	}
	if r := remote("-r", "bash", "-e", "echo out; echo err >&2; exit 42"); r.code != 42 || r.stdout != "out\n" || r.stderr != "err\n" {
		t.Errorf("exit 42: %+v", r)
	}
	if r := remote("--no-stream", "-r", "bash", "-e", "echo buffered; exit 7"); r.code != 7 || r.stdout != "buffered\n" {
		t.Errorf("buffered: %+v", r)
	}
	if r := remote("-r", "python", "-e", "raise ValueError('boom')"); r.code != 1 || !strings.Contains(r.stderr, "ValueError: boom") {
		t.Errorf("raise: %+v", r)
	}
	if r := remote("-r", "bash", "--timeout", "1000", "-e", "sleep 10"); r.code != 137 || !strings.Contains(r.stderr, "[ERR] EXECUTION TIMED OUT") {
		t.Errorf("timeout: %+v", r)
	}
	if r := remote("-r", "bash", "--workdir", "/etc", "-e", "pwd"); r.code != 1 || r.stderr != "[ERR] Working directory must be inside /sandbox\n" {
		t.Errorf("workdir: %+v", r)
	}
	if r := runCLI(t, "", "run", "--host", d.host(), "--key", "wrong", "-e", "1"); r.code != 1 || !strings.Contains(r.stderr, "Invalid API key") {
		t.Errorf("wrong key: %+v", r)
	}
	// ISOL8_HOST and piped stdin.
	cmd := isol8Cmd(t, "piped\n", "run", "-r", "bash", "--key", daemonKey, "-e", "cat")
	cmd.Env = append(cmd.Env, "ISOL8_HOST="+d.host())
	if out, err := cmd.Output(); err != nil || string(out) != "piped\n" {
		t.Errorf("ISOL8_HOST: %v %q", err, out)
	}

	// Named sessions survive between runs and are listed and stopped.
	remote("--session-id", "cli-sess", "-r", "bash", "-e", "echo kept > /sandbox/k")
	if r := remote("--session-id", "cli-sess", "-r", "bash", "-e", "cat /sandbox/k"); r.stdout != "kept\n" {
		t.Errorf("session state: %+v", r)
	}
	if r := runCLI(t, "", "session", "list", "--host", d.host(), "--key", daemonKey); !strings.Contains(r.stdout, "cli-sess  [idle]") {
		t.Errorf("session list: %+v", r)
	}
	if r := runCLI(t, "", "session", "stop", "cli-sess", "--host", d.host(), "--key", daemonKey); r.stdout != "[OK] Session \"cli-sess\" destroyed.\n" {
		t.Errorf("session stop: %+v", r)
	}
	if r := runCLI(t, "", "session", "list", "--host", d.host(), "--key", daemonKey); r.stdout != "[INFO] No active sessions.\n" {
		t.Errorf("after stop: %+v", r)
	}

	// --persistent without a name: a cli-<ms> session for this run only.
	if r := remote("--persistent", "-r", "bash", "-e", "echo p"); r.code != 0 || r.stdout != "p\n" || !strings.HasPrefix(r.stderr, "[Run] Session ID: cli-") {
		t.Errorf("persistent: %+v", r)
	}
	if r := runCLI(t, "", "session", "list", "--json", "--host", d.host(), "--key", daemonKey); r.stdout != "[]\n" {
		t.Errorf("auto session left: %+v", r)
	}

	// Ctrl-C cancels the remote run: the CLI exits 130 and the program
	// ends on the server.
	cmd = isol8Cmd(t, "", "run", "--host", d.host(), "--key", daemonKey, "-r", "bash", "-e", "echo started; sleep 60")
	out, w, _ := os.Pipe()
	cmd.Stdout = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if l, _ := bufio.NewReader(out).ReadString('\n'); l != "started\n" {
		cmd.Process.Kill()
		t.Fatalf("first line %q", l)
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err == nil || cmd.ProcessState.ExitCode() != 130 {
		t.Fatalf("after SIGINT: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(d.get(t, "/metrics"), "isol8_executions_running 0") {
		if time.Now().After(deadline) {
			t.Fatal("the remote program kept running after Ctrl-C")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestE2EDaemonTiming measures `isol8 run` whole-process time through the
// local daemon against a cold local run (ISOL8_BENCH=1).
func TestE2EDaemonTiming(t *testing.T) {
	if os.Getenv("ISOL8_BENCH") != "1" {
		t.Skip("set ISOL8_BENCH=1 to measure")
	}
	d := startDaemon(t)
	measure := func(n int, args ...string) []time.Duration {
		var ds []time.Duration
		for i := 0; i < n; i++ {
			start := time.Now()
			if r := runCLI(t, "", args...); r.code != 0 {
				t.Fatalf("%v: %+v", args, r)
			}
			ds = append(ds, time.Since(start))
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds
	}
	for _, rt := range []struct{ name, code string }{{"python", "print(1)"}, {"bash", "echo 1"}} {
		measure(3, "run", "--host", d.host(), "--key", daemonKey, "-r", rt.name, "-e", rt.code) // warm up
		warm := measure(40, "run", "--host", d.host(), "--key", daemonKey, "-r", rt.name, "-e", rt.code)
		cold := measure(5, "run", "-r", rt.name, "-e", rt.code)
		t.Logf("%s: isol8 run via daemon p50 %v p95 %v | cold local p50 %v max %v", rt.name,
			warm[len(warm)/2].Round(100*time.Microsecond), warm[len(warm)*95/100].Round(100*time.Microsecond),
			cold[len(cold)/2].Round(time.Millisecond), cold[len(cold)-1].Round(time.Millisecond))
	}
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/isol8/isol8/driver"
	ctrd "github.com/isol8/isol8/driver/containerd"
	"github.com/isol8/isol8/engine"
	"github.com/isol8/isol8/internal/testenv"
)

// print('x'*2000000) streams all of its 2,000,001 bytes (it stopped at
// 1,048,576 without a word); a streaming cap warns.
func TestE2EStreamWholeOutput(t *testing.T) {
	testenv.MustHaveRoot(t)
	r := runCLI(t, "", "run", "-e", "print('x'*2000000)")
	if r.code != 0 || len(r.stdout) != 2000001 || r.stderr != "" {
		t.Fatalf("exit %d, stdout %d bytes, stderr %q", r.code, len(r.stdout), r.stderr)
	}
	r = runCLI(t, "", "run", "-e", "print('x'*2000000)", "--max-output", "1000")
	if r.code != 0 || len(r.stdout) != 1000 || r.stderr != "[WARN] Output was truncated\n" {
		t.Fatalf("exit %d, stdout %d bytes, stderr %q", r.code, len(r.stdout), r.stderr)
	}
}

// --debug shows the lifecycle with durations and the completion metadata.
func TestE2EDebugLifecycle(t *testing.T) {
	testenv.MustHaveRoot(t)
	r := runCLI(t, "", "run", "--debug", "-e", "print(1)")
	if r.code != 0 || r.stdout != "1\n" {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"[DEBUG] image resolve image=isol8:python runtime=python ok=true dur=",
		"[DEBUG] sandbox create container=isol8-",
		"[DEBUG] sandbox start container=isol8-",
		"[DEBUG] agent ready container=isol8-",
		"[DEBUG] pool acquire result=miss image=isol8:python container=isol8-",
		"[DEBUG] execution done container=isol8-",
		" exitCode=0 ", " truncated=false timedOut=false oomKilled=false ", " peakMemoryMB=",
		"[DEBUG] sandbox destroy container=isol8-",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}

// `isol8 run f.py` runs /sandbox/main.py, not python3 -c <contents>.
func TestE2EFileRunsAsFile(t *testing.T) {
	testenv.MustHaveRoot(t)
	dir := t.TempDir()
	py := write(t, dir, "f.py", "\ufeffprint(__file__)\n")
	mjs := write(t, dir, "m.mjs", "console.log(import.meta.url, typeof require)\n")
	noext := write(t, dir, "script", "print(__file__)\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", py}, "/sandbox/main.py\n"},
		{[]string{"run", mjs}, "file:///sandbox/main.mjs undefined\n"},
		{[]string{"run", "-r", "python", noext}, "/sandbox/main.py\n"},
	} {
		r := runCLI(t, "", tc.args...)
		if r.code != 0 || r.stdout != tc.want {
			t.Errorf("%v: exit %d stdout %q stderr %q; want %q", tc.args, r.code, r.stdout, r.stderr, tc.want)
		}
	}
}

// A reader that goes away ends the run: exit 141, nothing left behind
// (runCLI checks the containers). Before, isol8 died of SIGPIPE and the
// sandbox ran until its timeout.
func TestE2EBrokenPipe(t *testing.T) {
	testenv.MustHaveRoot(t)
	for _, tc := range []struct {
		code     string
		readLine bool
	}{
		{"print(1); import time; time.sleep(30)", false}, // `| true`: reader gone before the first write
		{"while True: print(1)", true},                   // `| head -1`
	} {
		code := tc.code
		cmd := isol8Cmd(t, "", "run", "-e", code)
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout = w
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		line := ""
		if tc.readLine {
			line, _ = bufio.NewReader(r).ReadString('\n')
		}
		r.Close()
		start := time.Now()
		err = cmd.Wait()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 141 {
			t.Fatalf("%q: first line %q, exit %v, stderr %q", code, line, err, errb.String())
		}
		if took := time.Since(start); took > 15*time.Second {
			t.Fatalf("%q: took %s to end", code, took)
		}
		if left := containersOf(t, cmd.Process.Pid); len(left) > 0 {
			t.Fatalf("%q left %v", code, left)
		}
		if errb.Len() != 0 {
			t.Errorf("%q: stderr %q", code, errb.String())
		}
	}
}

// --persist leaves the container running after the CLI exits and says how
// to get into it and remove it. Before, the agent exited with the CLI.
func TestE2EPersistKeepsContainer(t *testing.T) {
	testenv.MustHaveRoot(t)
	t.Run("ephemeral", func(t *testing.T) { testPersistKeeps(t, "run", "--persist", "-e", "print('kept')") })
	t.Run("persistent", func(t *testing.T) { testPersistKeeps(t, "run", "--persistent", "--persist", "-e", "print('kept')") })
}

func testPersistKeeps(t *testing.T, args ...string) {
	cmd := isol8Cmd(t, "", args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %s", err, errb.String())
	}
	left := containersOf(t, cmd.Process.Pid)
	if len(left) != 1 {
		t.Fatalf("kept containers %v; stderr %q", left, errb.String())
	}
	id := left[0]
	ctx := context.Background()
	drv, err := ctrd.New(ctx, ctrd.Config{Address: testenv.MustHaveContainerd(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	defer func() {
		if err := drv.Remove(context.Background(), id); err != nil {
			t.Errorf("remove kept container %s: %v", id, err)
		}
	}()
	addr := drv.Address()
	wantContains(t, "stderr", errb.String(),
		"[Run] Container kept running (--persist): "+id+"\n",
		"[Run] Get a shell in it: ctr --address "+addr+" --namespace isol8 task exec -t --exec-id debug "+id+" bash\n",
		"[Run] Remove it: ctr --address "+addr+" --namespace isol8 task rm -f "+id+" && ctr --address "+addr+" --namespace isol8 container rm "+id+"\n",
	)
	time.Sleep(500 * time.Millisecond) // the agent used to exit as soon as the CLI had gone
	infos, err := drv.ListSandboxes(ctx, map[string]string{driver.LabelManaged: "true", driver.LabelPID: strconv.Itoa(cmd.Process.Pid)})
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || !infos[0].Running {
		t.Fatalf("kept container not running: %+v", infos)
	}
}

// The troubleshooting messages that need a real sandbox, verbatim.
func TestE2EClearErrors(t *testing.T) {
	testenv.MustHaveRoot(t)
	bin := t.TempDir()
	blob := make([]byte, 256)
	for i := range blob {
		blob[i] = byte(i)
	}
	if err := os.WriteFile(bin+"/blob.bin", blob, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"oom stream", []string{"run", "--memory", "64m", "-e", "x = bytearray(512*1024*1024)"}, 137, "",
			"[ERR] Out of memory (limit 64m): raise --memory\n"},
		{"oom buffered", []string{"run", "--no-stream", "--memory", "64m", "-e", "x = bytearray(512*1024*1024)"}, 137, "",
			"[ERR] Out of memory (limit 64m): raise --memory\n"},
		{"missing workdir", []string{"run", "--workdir", "sub", "-e", "print(1)"}, 1, "",
			"[ERR] Working directory does not exist: /sandbox/sub. Create it first, e.g. --setup \"mkdir -p /sandbox/sub\"\n"},
		{"memory 1k", []string{"run", "--memory", "1k", "-e", "print(1)"}, 1, "",
			"[ERR] Invalid --memory value: \"1k\". The sandbox needs at least 8m.\n"},
		{"reserved secret", []string{"run", "--secret", "PATH=/x", "-e", "print(1)"}, 1, "",
			"[ERR] --secret PATH: PATH is a reserved name (isol8 sets it in the sandbox). Reserved: PYTHONUNBUFFERED, PYTHONUSERBASE, NPM_CONFIG_PREFIX, DENO_DIR, PATH, NODE_PATH, HOME\n"},
		{"agent without network", []string{"run", "-r", "agent", "-e", "hi"}, 1, "",
			"[ERR] Agent runtime requires network access. The AI coding agent needs to reach its LLM provider API. Use --net host, or --net filtered --allow \"api.anthropic.com\" (or your provider's domain).\n"},
		{"install", []string{"run", "--install", "numpy", "--net", "none", "-e", "1"}, 1, "",
			"[ERR] " + engine.TextInstallNeedsNetwork + "\n"},
		{"binary files", []string{"run", "--files", bin, "-r", "bash", "-e", "sha256sum < /sandbox/blob.bin | cut -c1-16"}, 0,
			"40aff2e9d2d8922e\n", ""},
		{"typo", []string{"rn"}, 1, "", "error: unknown command 'rn'\n(Did you mean run?)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, "", tc.args...)
			if r.code != tc.code || r.stdout != tc.stdout || r.stderr != tc.stderr {
				t.Fatalf("exit %d stdout %q stderr %q; want %d %q %q", r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}

// cleanup --images lists "image <id12> | <tags>" (answered "n": nothing is
// removed).
func TestE2ECleanupListsImageIDs(t *testing.T) {
	testenv.MustHaveRoot(t)
	r := runCLI(t, "n\n", "cleanup", "--images")
	if r.code != 0 || !regexp.MustCompile(`(?m)^  🖼️ image [0-9a-f]{12} \| .*isol8:python`).MatchString(r.stdout) ||
		!strings.Contains(r.stdout, "Cleanup cancelled") {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

// `echo data | isol8 run -e ...` gives the program the data (it was
// dropped without a word).
func TestE2EPipedStdinReachesProgram(t *testing.T) {
	testenv.MustHaveRoot(t)
	r := runCLI(t, "hello piped\n", "run", "-e", "import sys; print(sys.stdin.read().upper(), end='')")
	if r.code != 0 || r.stdout != "HELLO PIPED\n" {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

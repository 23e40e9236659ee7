package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/isol8/isol8/driver"
	ctrd "github.com/isol8/isol8/driver/containerd"
	"github.com/isol8/isol8/internal/testenv"
)

// End-to-end tests run the real isol8 binary against the real containerd.

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binOut  []byte
)

// isol8Binary returns ISOL8_BIN (set by `make test`) or builds isol8 once.
func isol8Binary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ISOL8_BIN"); p != "" {
		return p
	}
	initPath := testenv.InitBinary(t)
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "isol8-e2e-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "isol8")
		cmd := exec.Command(testenv.GoTool(), "build", "-o", binPath, ".")
		if binOut, binErr = cmd.CombinedOutput(); binErr != nil {
			return
		}
		// A plain `go build` embeds no isol8-init; isol8 then finds one
		// beside its executable.
		data, err := os.ReadFile(initPath)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "isol8-init"), data, 0o755)
		}
		binErr = err
	})
	if binErr != nil {
		t.Fatalf("build isol8: %v\n%s", binErr, binOut)
	}
	return binPath
}

type e2eResult struct {
	stdout, stderr string
	code           int
}

func isol8Cmd(t *testing.T, stdin string, args ...string) *exec.Cmd {
	t.Helper()
	addr := testenv.MustHaveContainerd(t)
	cmd := exec.Command(isol8Binary(t), append([]string{"--containerd-address", addr}, args...)...)
	cmd.Dir = t.TempDir() // no config file
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	cmd.Stdin = strings.NewReader(stdin)
	return cmd
}

func runCLI(t *testing.T, stdin string, args ...string) e2eResult {
	t.Helper()
	cmd := isol8Cmd(t, stdin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run isol8 %v: %v", args, err)
	}
	if left := containersOf(t, cmd.Process.Pid); len(left) > 0 {
		t.Errorf("isol8 %v left containers behind: %v", args, left)
	}
	return e2eResult{out.String(), errb.String(), code}
}

// containersOf lists the isol8 containers created by process pid.
func containersOf(t *testing.T, pid int) []string {
	t.Helper()
	ctx := context.Background()
	drv, err := ctrd.New(ctx, ctrd.Config{Address: testenv.MustHaveContainerd(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	ids, err := drv.List(ctx, map[string]string{driver.LabelManaged: "true", driver.LabelPID: strconv.Itoa(pid)})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestE2ERun(t *testing.T) {
	testenv.MustHaveRoot(t)
	script := filepath.Join(t.TempDir(), "hello.js")
	if err := os.WriteFile(script, []byte(`console.log("from a file")`), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		stdin      string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"python eval", "", []string{"run", "-e", "print(42)"}, 0, "42\n", ""},
		{"no-stream trims and adds newline", "", []string{"run", "-e", "print(1)", "--no-stream"}, 0, "1\n", ""},
		{"exit code", "", []string{"run", "-e", "import sys; sys.exit(42)", "--no-stream"}, 42, "", ""},
		{"bash exit", "", []string{"run", "-r", "bash", "-e", "exit 7"}, 7, "", ""},
		{"file", "", []string{"run", script}, 0, "from a file\n", ""},
		{"stdin code", `print("hello stdin")`, []string{"run", "--runtime", "python"}, 0, "hello stdin\n", ""},
		{"--stdin", "", []string{"run", "-e", "import sys; print(sys.stdin.read())", "--stdin", "hello-stdin"}, 0, "hello-stdin\n", ""},
		{"cmd", "", []string{"run", "--cmd", "echo hi from cmd"}, 0, "hi from cmd\n", ""},
		{"secret", "", []string{"run", "-e", "import os; print(os.environ['MY_KEY'])", "--secret", "MY_KEY=supersecret123"}, 0, "***\n", ""},
		{"workdir outside", "", []string{"run", "-e", "1", "--workdir", "/etc"}, 1, "", "Working directory must be inside /sandbox"},
		{"unknown runtime", "", []string{"run", "-e", "1", "-r", "ruby"}, 1, "", `Unknown runtime: "ruby"`},
		{"bad memory", "", []string{"run", "-e", "1", "--memory", "lots"}, 1, "", "Invalid memory limit format"},
		{"missing file", "", []string{"run", "/nonexistent/x.py"}, 1, "", "File not found"},
		{"truncated", "", []string{"run", "-e", "print('x' * 10000)", "--max-output", "1024", "--no-stream"}, 0, "", "[WARN] Output was truncated"},
		{"timeout", "", []string{"run", "-e", "import time; time.sleep(60)", "--timeout", "1000"}, 137, "", "EXECUTION TIMED OUT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := runCLI(t, tc.stdin, tc.args...)
			if r.code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout %q\nstderr %q", r.code, tc.wantCode, r.stdout, r.stderr)
			}
			if tc.wantStdout != "" && r.stdout != tc.wantStdout {
				t.Fatalf("stdout %q, want %q (stderr %q)", r.stdout, tc.wantStdout, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.wantStderr) {
				t.Fatalf("stderr %q lacks %q", r.stderr, tc.wantStderr)
			}
			if tc.name == "timeout" && time.Since(start) > 10*time.Second {
				t.Fatalf("timeout run took %s", time.Since(start))
			}
		})
	}
}

func TestE2ESigintLeavesNothing(t *testing.T) {
	testenv.MustHaveRoot(t)
	cmd := isol8Cmd(t, "", "run", "-r", "bash", "-e", "echo started; sleep 60")
	// A pipe of our own (not StdoutPipe, which Wait closes under a reader).
	stdout, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	cmd.Stdout = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	// Signal once the program runs: its first line says so.
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- l
		io.Copy(io.Discard, stdout)
	}()
	select {
	case l := <-line:
		if l != "started\n" {
			cmd.Process.Kill()
			t.Fatalf("first line %q, want started", l)
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("program never started")
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Fatalf("exit after SIGINT: %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("SIGINT took %s to finish", took)
	}
	if left := containersOf(t, cmd.Process.Pid); len(left) > 0 {
		t.Fatalf("left behind after SIGINT: %v", left)
	}
}

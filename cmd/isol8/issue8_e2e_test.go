package main

import (
	"strings"
	"testing"

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

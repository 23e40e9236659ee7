package main

import (
	"fmt"
	"net"
	"strings"
	"testing"
)

// `isol8 serve` refuses bad ports and a missing key before anything
// starts, with the reference's words.
func TestServeArguments(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no key", nil, []string{"--port", "3999"}, "[ERR] API key required. Use --key or ISOL8_API_KEY env var.\n"},
		{"bad flag port", nil, []string{"--port", "abc", "--key", "k"}, "[ERR] Invalid port from --port: abc. Expected 1-65535.\n"},
		{"zero port", nil, []string{"-p", "0", "-k", "k"}, "[ERR] Invalid port from --port: 0. Expected 1-65535.\n"},
		{"bad ISOL8_PORT", map[string]string{"ISOL8_PORT": "70000", "PORT": "1"}, []string{"--key", "k"}, "[ERR] Invalid port from ISOL8_PORT: 70000. Expected 1-65535.\n"},
		{"bad PORT", map[string]string{"PORT": "-1"}, []string{"--key", "k"}, "[ERR] Invalid port from PORT: -1. Expected 1-65535.\n"},
		{"bad listen", nil, []string{"--port", "3999", "--key", "k", "--listen", "tcp://x"}, "[ERR] Invalid --listen address: tcp://x. Expected unix:///absolute/path\n"},
		{"bad auth db", nil, []string{"--port", "3999", "--key", "k", "--auth-db", "/nonexistent-dir/x.db?mode=ro"}, "[ERR] Cannot open the auth database: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			for k, v := range tc.env {
				h.env[k] = v
			}
			r := h.run(append([]string{"serve"}, tc.args...)...)
			wantCode(t, r, 1)
			if r.stderr != tc.want && !(strings.HasSuffix(tc.want, ": ") && strings.HasPrefix(r.stderr, tc.want)) {
				t.Errorf("stderr = %q, want %q", r.stderr, tc.want)
			}
		})
	}
}

// A port in use fails a non-interactive start with a clear error instead
// of moving elsewhere.
func TestServePortInUse(t *testing.T) {
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	h := newHarness(t)
	h.env["ISOL8_PORT"] = fmt.Sprint(port)
	r := h.run("serve", "--key", "k")
	wantCode(t, r, 1)
	want := fmt.Sprintf("[ERR] Port %d is already in use. Choose another with --port, ISOL8_PORT or PORT.\n", port)
	if r.stderr != want {
		t.Errorf("stderr = %q, want %q", r.stderr, want)
	}
}

// The interactive choice for a port in use: wrong answers are explained,
// another port is taken, Exit cancels, an empty answer picks a free port.
func TestServeChoosePort(t *testing.T) {
	busy, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.Addr().(*net.TCPAddr).Port
	free := freePort(t)
	run := func(answers string) (l net.Listener, out, errs string, err error) {
		var o, e strings.Builder
		a := newApp(strings.NewReader(answers), &o, &e, map[string]string{}, t.TempDir())
		l, err = a.choosePort(port)
		return l, o.String(), e.String(), err
	}
	l, out, errs, err := run(fmt.Sprintf("9\n1\nabc\n1\n%d\n1\n%d\n", port, free))
	if err != nil || l.Addr().(*net.TCPAddr).Port != free {
		t.Fatalf("another port: %v %v", l, err)
	}
	l.Close()
	for _, want := range []string{"[ERR] Invalid selection. Enter 1, 2, or 3.", "[ERR] Invalid port: abc. Expected 1-65535.",
		fmt.Sprintf("[WARN] Port %d is already in use.", port)} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q: %s", want, errs)
		}
	}
	if !strings.Contains(out, "Choose: [1] Enter another port  [2] Find an available port  [3] Exit (default: 2): ") ||
		!strings.Contains(out, "Enter port (1-65535): ") {
		t.Errorf("prompts: %q", out)
	}
	if _, _, _, err := run("3\n"); err == nil || err.Error() != "[ERR] Server startup cancelled." {
		t.Fatalf("exit: %v", err)
	}
	l, out, _, err = run("\n")
	if err != nil || !strings.Contains(out, fmt.Sprintf("[INFO] Using available port %d", l.Addr().(*net.TCPAddr).Port)) {
		t.Fatalf("automatic: %v %q", err, out)
	}
	l.Close()
}

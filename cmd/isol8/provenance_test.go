package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/isol8/isol8/audit"
)

const remoteOn = `{"remoteCode":{"enabled":true}}`

// Remote code is off by default: refused before any engine exists.
func TestRunRemoteCodeDisabled(t *testing.T) {
	for _, args := range [][]string{
		{"--url", "https://h/a.py"},
		{"--github", "o/r/main/s.py"},
		{"--gist", "id/f.js"},
	} {
		h := newHarness(t)
		r := h.run(append([]string{"run"}, args...)...)
		wantCode(t, r, 1)
		want := "[ERR] Remote code fetching is disabled. Set remoteCode.enabled=true to allow it.\n"
		if r.stderr != want || h.engines != 0 {
			t.Errorf("%v: stderr %q (engines %d), want %q", args, r.stderr, h.engines, want)
		}
	}
}

// --url, --github and --gist become the request's codeUrl (exact URL
// mappings), --hash its codeHash; the runtime comes from the URL path.
func TestRunRemoteCodeRequest(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		args             []string
		url, runtime     string
		insecure, hashed bool
	}{
		{[]string{"--url", "https://example.com/dir/s.py?x=1", "--hash", hash}, "https://example.com/dir/s.py?x=1", "python", false, true},
		{[]string{"--url", "http://example.com/s.sh", "--allow-insecure-code-url"}, "http://example.com/s.sh", "bash", true, false},
		{[]string{"--github", "octo/repo/v1.2/src/deep/main.ts"}, "https://raw.githubusercontent.com/octo/repo/v1.2/src/deep/main.ts", "bun", false, false},
		{[]string{"--gist", "abc123/hello.mjs", "--hash", hash}, "https://gist.githubusercontent.com/abc123/raw/hello.mjs", "node", false, true},
		{[]string{"--gist", "abc123/hello.mjs", "-r", "deno"}, "https://gist.githubusercontent.com/abc123/raw/hello.mjs", "deno", false, false},
		// --url wins over --github and --gist.
		{[]string{"--github", "o/r/m/a.sh", "--url", "https://x.test/b.py", "--gist", "g/c.js"}, "https://x.test/b.py", "python", false, false},
	} {
		h := newHarness(t)
		write(t, h.cwd, "isol8.config.json", remoteOn)
		r := h.run(append([]string{"run", "--no-stream"}, tc.args...)...)
		wantCode(t, r, 0)
		req := h.lastRequest()
		if req.CodeURL != tc.url || req.Runtime != tc.runtime || req.Code != "" || req.AllowInsecureCodeURL != tc.insecure ||
			(req.CodeHash == hash) != tc.hashed {
			t.Errorf("%v: request %+v", tc.args, req)
		}
		if h.opts.RemoteCode == nil || !h.opts.RemoteCode.Enabled || h.opts.RemoteCode.MaxCodeSize != 10<<20 {
			t.Errorf("%v: engine policy %+v", tc.args, h.opts.RemoteCode)
		}
	}
}

func TestRunHelpShowsRemoteCodeFlags(t *testing.T) {
	h := newHarness(t)
	r := h.run("run", "--help")
	wantCode(t, r, 0)
	wantContains(t, "run --help", r.stdout, "--url <url>", "--github <owner/repo/ref/path>", "--gist <gistId/file.ext>",
		"--hash <sha256>", "--allow-insecure-code-url")
}

// A working-directory config cannot open the SSRF guard.
func TestAllowPrivateDestinationsTrusted(t *testing.T) {
	h := newHarness(t)
	write(t, h.cwd, "isol8.config.json", `{"network":{"allowPrivateDestinations":true}}`)
	r := h.run("run", "-e", "1")
	wantCode(t, r, 1)
	wantContains(t, "stderr", r.stderr, `"network.allowPrivateDestinations" weakens the sandbox`)
	if h.engines != 0 {
		t.Fatal("engine made")
	}
	cfg := write(t, t.TempDir(), "c.json", `{"network":{"allowPrivateDestinations":true},"remoteCode":{"enabled":true}}`)
	r = h.run("--config", cfg, "run", "--no-stream", "-e", "1")
	wantCode(t, r, 0)
	if !h.opts.AllowPrivateDestinations {
		t.Fatal("the explicit config's switch did not reach the engine")
	}
	wantContains(t, "stderr", r.stderr, "[WARN] Sandbox weakened: remote-code fetches may reach private addresses\n")
}

// A local run writes an audit record when the config enables it.
func TestRunWritesAudit(t *testing.T) {
	h := newHarness(t)
	dir := filepath.Join(h.cwd, "aud")
	// Where the log goes is trusted configuration: a working-directory
	// file may not choose where root writes.
	write(t, h.cwd, "isol8.config.json", `{"audit":{"enabled":true,"logDir":"aud"}}`)
	r := h.run("run", "--no-stream", "-e", "print(1)")
	wantCode(t, r, 1)
	wantContains(t, "stderr", r.stderr, `"audit.logDir" weakens`)
	cfg := write(t, t.TempDir(), "c.json", `{"audit":{"enabled":true,"logDir":"aud"}}`)
	r = h.run("--config", cfg, "run", "--no-stream", "-e", "print(1)")
	wantCode(t, r, 0)
	if h.opts.Audit == nil {
		t.Fatal("no audit logger")
	}
	if h.opts.Audit.Path() != filepath.Join(dir, audit.FileName) {
		t.Fatalf("audit path %s", h.opts.Audit.Path())
	}

	// $ISOL8_AUDIT_DIR names the directory when audit.logDir does not.
	h = newHarness(t)
	envDir := filepath.Join(t.TempDir(), "from-env")
	h.env["ISOL8_AUDIT_DIR"] = envDir
	write(t, h.cwd, "isol8.config.json", `{"audit":{"enabled":true}}`)
	wantCode(t, h.run("run", "--no-stream", "-e", "print(1)"), 0)
	if h.opts.Audit.Path() != filepath.Join(envDir, audit.FileName) {
		t.Fatalf("audit path %s", h.opts.Audit.Path())
	}

	// Disabled (the default): no logger, no directory.
	h = newHarness(t)
	wantCode(t, h.run("run", "--no-stream", "-e", "print(1)"), 0)
	if h.opts.Audit != nil {
		t.Fatal("audit logger without audit.enabled")
	}
	if _, err := os.Stat(filepath.Join(h.cwd, audit.DefaultDirName)); !os.IsNotExist(err) {
		t.Fatalf("audit directory made while disabled: %v", err)
	}
}

func writeAuditLog(t *testing.T, dir string, recs ...*audit.Record) {
	t.Helper()
	l, err := audit.New(audit.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		l.Record(context.Background(), r)
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestAuditTailQuery(t *testing.T) {
	h := newHarness(t)
	dir := filepath.Join(h.cwd, ".isol8_audit")
	at := func(min int) string { return audit.FormatTime(h.now.Add(time.Duration(min) * time.Minute)) }
	writeAuditLog(t, dir,
		&audit.Record{ExecutionID: "e1", Timestamp: at(-120), Runtime: "python", Outcome: audit.OutcomeSuccess, Tenant: "acme", CodeHash: strings.Repeat("a", 64)},
		&audit.Record{ExecutionID: "e2", Timestamp: at(-30), Runtime: "node", Outcome: audit.OutcomeTimeout, Tenant: "acme", ExitCode: 137},
		&audit.Record{ExecutionID: "e3", Timestamp: at(-10), Runtime: "python", Outcome: audit.OutcomeError, Tenant: "other", Error: "Remote code hash mismatch: expected x, got y"},
		&audit.Record{Type: audit.TypeNetworkBlocked, ExecutionID: "e3", Timestamp: at(-9), Tenant: "other",
			Blocked: &audit.Blocked{Method: "CONNECT", Host: "evil.test", Port: 443, Reason: "filter_mismatch"}},
	)
	ids := func(out string) []string {
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if line == "" {
				continue
			}
			var r audit.Record
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			got = append(got, r.Type[:1]+":"+r.ExecutionID)
		}
		return got
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"audit", "tail", "--json"}, "e:e1 e:e2 e:e3 n:e3"},
		{[]string{"audit", "tail", "-n", "2", "--json"}, "e:e3 n:e3"},
		{[]string{"audit", "query", "--json", "--runtime", "python"}, "e:e1 e:e3"},
		{[]string{"audit", "query", "--json", "--outcome", "timeout"}, "e:e2"},
		{[]string{"audit", "query", "--json", "--tenant", "other"}, "e:e3 n:e3"},
		{[]string{"audit", "query", "--json", "--since", "1h"}, "e:e2 e:e3 n:e3"},
		{[]string{"audit", "query", "--json", "--until", at(-60)}, "e:e1"},
		{[]string{"audit", "query", "--json", "--type", "network_blocked"}, "n:e3"},
		{[]string{"audit", "query", "--json", "--limit", "1"}, "e:e1"},
	} {
		r := h.run(tc.args...)
		wantCode(t, r, 0)
		if got := strings.Join(ids(r.stdout), " "); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.args, got, tc.want)
		}
	}
	r := h.run("audit", "query", "--tenant", "other")
	wantCode(t, r, 0)
	wantContains(t, "human output", r.stdout, "error    python", "error: Remote code hash mismatch", "BLOCKED  CONNECT evil.test:443")
	for _, bad := range [][]string{
		{"audit", "query", "--since", "yesterday"},
		{"audit", "query", "--outcome", "great"},
		{"audit", "tail", "-n", "-1"},
		{"audit", "query", "--dir", filepath.Join(h.cwd, "missing")},
	} {
		r := h.run(bad...)
		wantCode(t, r, 1)
		if !strings.HasPrefix(r.stderr, "[ERR] ") {
			t.Errorf("%v: %q", bad, r.stderr)
		}
	}
}

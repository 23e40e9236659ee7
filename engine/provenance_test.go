package engine

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/audit"
	"github.com/isol8/isol8/remotecode"
)

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// codeHost serves code at /<name> on loopback and counts requests.
type codeHost struct {
	*httptest.Server
	hits atomic.Int64
}

func newCodeHost(t *testing.T, files map[string]string) *codeHost {
	t.Helper()
	h := &codeHost{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.hits.Add(1)
		body, ok := files[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(h.Close)
	return h
}

func loopbackPolicy() *remotecode.Policy {
	return &remotecode.Policy{Enabled: true, AllowedSchemes: []string{"http", "https"}}
}

func newAuditLog(t *testing.T, cfg audit.Config) (*audit.Logger, string) {
	t.Helper()
	if cfg.Dir == "" && cfg.Writer == nil {
		cfg.Dir = t.TempDir()
	}
	l, err := audit.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	return l, cfg.Dir
}

// auditRecords closes l and returns what it wrote, and the raw file.
func auditRecords(t *testing.T, l *audit.Logger, dir string) ([]audit.Record, string) {
	t.Helper()
	if err := l.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, audit.FileName))
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Record
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var r audit.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out, string(raw)
}

// The engine refuses remote code its policy disables, and a client's
// options cannot switch it on or loosen it: all before any sandbox exists
// (no backend is needed for these).
func TestRemoteCodePolicyThroughSession(t *testing.T) {
	srv := newCodeHost(t, map[string]string{"a.py": "print(1)"})
	h, err := NewHost(HostOptions{AllowPrivateDestinations: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Stop(context.Background()) })
	on := true
	s, err := h.Session(api.Options{RemoteCode: &api.RemoteCodePolicy{Enabled: &on, AllowedSchemes: []string{"http"}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Execute(t.Context(), Request{Runtime: "python", CodeURL: srv.URL + "/a.py", AllowInsecureCodeURL: true})
	if err == nil || err.Error() != remotecode.TextDisabled || !errdefs.IsInvalidArgument(err) {
		t.Fatalf("a client enabled remote code on a host without it: %v", err)
	}

	h2, err := NewHost(HostOptions{AllowPrivateDestinations: true, RemoteCode: &remotecode.Policy{Enabled: true, MaxCodeSize: 100}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h2.Stop(context.Background()) })
	s2, err := h2.Session(api.Options{RemoteCode: &api.RemoteCodePolicy{AllowedSchemes: []string{"http", "https"}, MaxCodeSize: 1 << 30}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s2.Execute(t.Context(), Request{Runtime: "python", CodeURL: srv.URL + "/a.py", AllowInsecureCodeURL: true})
	if err == nil || err.Error() != "URL scheme not allowed: http" {
		t.Fatalf("a client added http to the host's schemes: %v", err)
	}
	if _, err := h2.Session(api.Options{RemoteCode: &api.RemoteCodePolicy{BlockedHosts: []string{"("}}}); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("bad client pattern: %v", err)
	}
	if n := srv.hits.Load(); n != 0 {
		t.Fatalf("the code server got %d requests", n)
	}
}

// TestRemoteCodeRuns: code fetched from a loopback server with the right
// hash runs in a real sandbox; the audit record names the URL and the
// hash, and without includeCode holds no code.
func TestRemoteCodeRuns(t *testing.T) {
	const code = "import sys\nprint('remote ok', sys.version_info[0])\n"
	srv := newCodeHost(t, map[string]string{"hello.py": code})
	l, dir := newAuditLog(t, audit.Config{TrackResources: true})
	e := newTestEngine(t, Options{RemoteCode: loopbackPolicy(), AllowPrivateDestinations: true, Audit: l})
	mustHaveImage(t, e, "python")
	url := srv.URL + "/hello.py"
	res, err := e.Execute(t.Context(), Request{Runtime: "python", CodeURL: url, CodeHash: strings.ToUpper(sha(code)), AllowInsecureCodeURL: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != "remote ok 3" || res.ExitCode != 0 {
		t.Fatalf("%+v", res)
	}
	// Streams fetch the same way.
	ch, err := e.ExecuteStream(t.Context(), Request{Runtime: "python", CodeURL: url, AllowInsecureCodeURL: true})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for ev := range ch {
		if ev.Type == EventStdout {
			out.WriteString(ev.Data)
		}
	}
	if out.String() != "remote ok 3\n" {
		t.Fatalf("stream: %q", out.String())
	}
	recs, raw := auditRecords(t, l, dir)
	if len(recs) != 2 {
		t.Fatalf("%d records", len(recs))
	}
	r := recs[0]
	if r.Outcome != audit.OutcomeSuccess || r.CodeHash != sha(code) || r.Source == nil || r.Source.Kind != "url" ||
		r.Source.URL != url || r.Source.FinalURL != url || r.ExecutionID != res.ExecutionID || r.ContainerID == "" ||
		r.Image != "isol8:python" || r.Network == nil || r.Network.RemoteCodePolicy == "" {
		t.Fatalf("record %+v", r)
	}
	if strings.Contains(raw, "remote ok") {
		t.Fatal("code or output in the record without includeCode/includeOutput")
	}
	if r.Resources == nil || r.Resources.CgroupPeakMemoryMB == nil || *r.Resources.CgroupPeakMemoryMB <= 0 {
		t.Fatalf("resources %+v", r.Resources)
	}
}

// TestRemoteCodeMismatchRunsNothing: with a wrong hash nothing runs. The
// engine is persistent, so code that ran would leave its file behind for
// the next execution to see.
func TestRemoteCodeMismatchRunsNothing(t *testing.T) {
	const evil = "open('/sandbox/ran', 'w').write('x')\nprint('ran')\n"
	srv := newCodeHost(t, map[string]string{"evil.py": evil})
	l, dir := newAuditLog(t, audit.Config{})
	e := newTestEngine(t, Options{Mode: ModePersistent, RemoteCode: loopbackPolicy(), AllowPrivateDestinations: true, Audit: l})
	mustHaveImage(t, e, "python")
	want := sha("print('ok')")
	_, err := e.Execute(t.Context(), Request{Runtime: "python", CodeURL: srv.URL + "/evil.py", CodeHash: want, AllowInsecureCodeURL: true})
	wantErr := "Remote code hash mismatch: expected " + want + ", got " + sha(evil)
	if err == nil || err.Error() != wantErr || !errdefs.IsInvalidArgument(err) {
		t.Fatalf("err %v, want %q", err, wantErr)
	}
	// Streams refuse before the first event.
	if _, err := e.ExecuteStream(t.Context(), Request{Runtime: "python", CodeURL: srv.URL + "/evil.py", CodeHash: want, AllowInsecureCodeURL: true}); err == nil || err.Error() != wantErr {
		t.Fatalf("stream: %v", err)
	}
	res := run(t, e, Request{Runtime: "python", Code: "import os; print(os.path.exists('/sandbox/ran'))"})
	if res.Stdout != "False" {
		t.Fatalf("mismatching code ran: %q %q", res.Stdout, res.Stderr)
	}
	recs, _ := auditRecords(t, l, dir)
	if len(recs) != 3 || recs[0].Outcome != audit.OutcomeError || recs[0].Error != wantErr || recs[0].CodeHash != "" ||
		recs[0].Source.ExpectedHash != want || recs[0].ContainerID != "" {
		t.Fatalf("records %+v", recs)
	}
}

// TestRemoteCodeHTTPRefused: http needs allowInsecureCodeUrl even when the
// policy lists it; the server sees no request.
func TestRemoteCodeHTTPRefused(t *testing.T) {
	srv := newCodeHost(t, map[string]string{"a.py": "print(1)"})
	e, err := New(Options{RemoteCode: loopbackPolicy(), AllowPrivateDestinations: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop(context.Background())
	_, err = e.Execute(t.Context(), Request{Runtime: "python", CodeURL: srv.URL + "/a.py"})
	if err == nil || err.Error() != remotecode.TextInsecure {
		t.Fatalf("%v", err)
	}
	// The guard is closed without the switch: loopback is refused.
	e2, err := New(Options{RemoteCode: loopbackPolicy()})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Stop(context.Background())
	_, err = e2.Execute(t.Context(), Request{Runtime: "python", CodeURL: srv.URL + "/a.py", AllowInsecureCodeURL: true})
	if err == nil || err.Error() != "Blocked code URL host: 127.0.0.1" {
		t.Fatalf("%v", err)
	}
	if n := srv.hits.Load(); n != 0 {
		t.Fatalf("%d requests reached the server", n)
	}
}

// TestAuditOutcomes: records for a success, a timeout and an OOM kill from
// real sandboxes; secrets never appear in the log, even with code and
// output included.
func TestAuditOutcomes(t *testing.T) {
	const secret = "s3cr3t-value-9f2c"
	l, dir := newAuditLog(t, audit.Config{IncludeCode: true, IncludeOutput: true, TrackResources: true})
	e := newTestEngine(t, Options{MemoryLimit: "64m", Audit: l, Secrets: map[string]string{"TOKEN": secret}})
	mustHaveImage(t, e, "python", "bash")
	ctx := audit.WithCaller(t.Context(), audit.Caller{RequestID: "req-42", Tenant: "acme", KeyPrefix: "isol8_ab"})
	okCode := "import os\nprint(os.environ['TOKEN'])\nleak = '" + secret + "'\n"
	res, err := e.Execute(ctx, Request{Runtime: "python", Code: okCode, Metadata: map[string]string{"userId": "u1", "note": secret}})
	if err != nil || res.Stdout != "***" {
		t.Fatalf("%+v %v", res, err)
	}
	res, err = e.Execute(ctx, Request{Runtime: "bash", Code: "echo $TOKEN; sleep 30", TimeoutMs: 500})
	if err != nil || !res.TimedOut {
		t.Fatalf("%+v %v", res, err)
	}
	res, err = e.Execute(ctx, Request{Runtime: "python", Code: "x = bytearray(200 << 20)\nprint(len(x))", TimeoutMs: 20000})
	if err != nil || !res.OOMKilled {
		t.Fatalf("%+v %v", res, err)
	}
	_, err = e.Execute(ctx, Request{Runtime: "python", Code: "1", Workdir: "/etc/" + secret})
	if err == nil {
		t.Fatal("bad workdir accepted")
	}
	recs, raw := auditRecords(t, l, dir)
	if strings.Contains(raw, secret) {
		t.Fatalf("the secret is in the audit log:\n%s", raw)
	}
	if len(recs) != 4 {
		t.Fatalf("%d records", len(recs))
	}
	for i, want := range []string{audit.OutcomeSuccess, audit.OutcomeTimeout, audit.OutcomeOOM, audit.OutcomeError} {
		r := recs[i]
		if r.Outcome != want || r.RequestID != "req-42" || r.Tenant != "acme" || r.KeyPrefix != "isol8_ab" || r.Timestamp == "" {
			t.Errorf("record %d: %+v", i, r)
		}
	}
	s := recs[0]
	if s.UserID != "u1" || s.CodeHash != sha(okCode) || s.Stdout != "***" || !strings.Contains(s.Code, "'***'") ||
		s.Metadata["note"] != "***" || s.Limits == nil || s.Limits.MemoryLimit != "64m" || s.Network.Mode != NetworkNone {
		t.Errorf("success record %+v", s)
	}
	if to := recs[1]; to.ExitCode != 137 || !to.TimedOut || !strings.Contains(to.Stderr, "EXECUTION TIMED OUT") {
		t.Errorf("timeout record %+v", to)
	}
	if oom := recs[2]; !oom.OOMKilled || oom.Resources == nil || oom.Resources.CgroupPeakMemoryMB == nil || *oom.Resources.CgroupPeakMemoryMB < 32 {
		t.Errorf("oom record %+v (resources %+v)", oom, oom.Resources)
	}
	if bad := recs[3]; !strings.Contains(bad.Error, "Working directory must be inside /sandbox") {
		t.Errorf("error record %+v", bad)
	}
}

// hangingWriter never returns from Write until released: a disk that hangs.
type hangingWriter struct {
	release chan struct{}
	once    sync.Once
}

func (w *hangingWriter) Write(p []byte) (int, error) {
	<-w.release
	return len(p), nil
}

func (w *hangingWriter) unblock() { w.once.Do(func() { close(w.release) }) }

// TestAuditSlowDiskDoesNotSlowExecutions: with the audit destination hung,
// executions finish as fast as without an audit log; the records beyond
// the buffer are dropped and counted.
func TestAuditSlowDiskDoesNotSlowExecutions(t *testing.T) {
	w := &hangingWriter{release: make(chan struct{})}
	t.Cleanup(w.unblock)
	l, _ := newAuditLog(t, audit.Config{Writer: w, BufferSize: 2})
	e := newTestEngine(t, Options{Audit: l, PoolSize: &PoolSize{Clean: 1, Dirty: 1}})
	mustHaveImage(t, e, "bash")
	run(t, e, Request{Runtime: "bash", Code: "true"}) // warm
	const n = 12
	start := time.Now()
	for range n {
		run(t, e, Request{Runtime: "bash", Code: "echo 1"})
	}
	elapsed := time.Since(start)
	if elapsed > 30*time.Second {
		t.Fatalf("%d executions took %s with a hung audit disk", n, elapsed)
	}
	if d := l.Dropped(); d < n-3 {
		t.Fatalf("dropped %d of %d records", d, n+1)
	}
	w.unblock()
}

// TestAuditCgroupPeakPerRun: the cgroup's memory high-water mark is reset
// before each run, so a small run after a big one in the same sandbox
// reports its own peak.
func TestAuditCgroupPeakPerRun(t *testing.T) {
	l, dir := newAuditLog(t, audit.Config{TrackResources: true})
	e := newTestEngine(t, Options{Mode: ModePersistent, Audit: l})
	mustHaveImage(t, e, "python")
	run(t, e, Request{Runtime: "python", Code: "x = bytearray(150 << 20)\nx[::4096] = b'1' * len(x[::4096])\nprint(len(x))"})
	run(t, e, Request{Runtime: "python", Code: "print(1)"})
	recs, _ := auditRecords(t, l, dir)
	if len(recs) != 2 || recs[0].Resources == nil || recs[1].Resources == nil ||
		recs[0].Resources.CgroupPeakMemoryMB == nil || recs[1].Resources.CgroupPeakMemoryMB == nil {
		t.Fatalf("records %+v", recs)
	}
	big, small := *recs[0].Resources.CgroupPeakMemoryMB, *recs[1].Resources.CgroupPeakMemoryMB
	if big < 150 || small > big/2 {
		t.Fatalf("cgroup peaks: big run %.1f MB, small run %.1f MB", big, small)
	}
	if rb := recs[0].Resources.PeakMemoryMB; rb < 150 {
		t.Fatalf("rusage peak of the big run %.1f MB", rb)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:hunter2@example.com/a.py": "https://user:xxxxx@example.com/a.py",
		"https://example.com/a.py?x=1":          "https://example.com/a.py?x=1",
		"::":                                    "::",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("%s: %s", in, got)
		}
	}
}

// With logNetwork on, each request the filtered proxy blocks is an audit
// record of its own, attributed to the execution's caller, beside the
// execution's record. Before, blocked requests were only security events.
func TestAuditNetworkBlocked(t *testing.T) {
	srv := startNetServers(t)
	l, dir := newAuditLog(t, audit.Config{})
	h := newTestHost(t, HostOptions{AllowPrivateDestinations: true, Resolver: testResolver{}})
	o := filteredOpts([]string{`^allowed\.isol8\.test$`}, nil)
	o.Audit = l
	e := hostView(t, h, o)
	mustHaveImage(t, e, "python")
	ctx := audit.WithCaller(t.Context(), audit.Caller{RequestID: "req-net", Tenant: "acme"})
	res, err := e.Execute(ctx, Request{Runtime: "python", TimeoutMs: 60000, Code: fetchCode(
		"http://allowed.isol8.test:"+srv.httpPort+"/ok",
		"http://denied.isol8.test:"+srv.httpPort+"/no")})
	if err != nil || !strings.Contains(res.Stdout, "403 ") {
		t.Fatalf("%+v %v", res, err)
	}
	recs, _ := auditRecords(t, l, dir)
	var blocked, execs int
	for _, r := range recs {
		switch r.Type {
		case audit.TypeNetworkBlocked:
			blocked++
			if r.Blocked == nil || r.Blocked.Host != "denied.isol8.test" || r.Blocked.Method != "GET" || r.Tenant != "acme" || r.RequestID != "req-net" {
				t.Errorf("blocked record: %+v %+v", r, r.Blocked)
			}
		case audit.TypeExecution:
			execs++
		}
	}
	if blocked != 1 || execs != 1 {
		t.Fatalf("records: %d blocked, %d executions, want 1 and 1: %+v", blocked, execs, recs)
	}
}

package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func newLogger(t *testing.T, cfg Config) *Logger {
	t.Helper()
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	return l
}

func lines(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestRecordFieldsAndCaller(t *testing.T) {
	dir := t.TempDir()
	l := newLogger(t, Config{Dir: dir, TrackResources: true})
	ctx := WithCaller(t.Context(), Caller{RequestID: "req-1", Tenant: "acme", KeyPrefix: "sk_abc"})
	l.Record(ctx, &Record{ExecutionID: "e1", UserID: "u1", Runtime: "python", CodeHash: "h", ContainerID: "c",
		ExitCode: 0, DurationMs: 5, Outcome: OutcomeSuccess, Code: "print(1)", Stdout: "1",
		Resources: &Usage{CPUTimeMs: 3, PeakMemoryMB: 9}})
	l.NetworkBlocked(ctx, "e1", Blocked{Method: "CONNECT", Host: "evil.test", Port: 443, Reason: "filter_mismatch"})
	if err := l.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := lines(t, filepath.Join(dir, FileName))
	if len(got) != 2 {
		t.Fatalf("%d lines", len(got))
	}
	r := got[0]
	for k, want := range map[string]any{"type": "execution", "executionId": "e1", "userId": "u1", "runtime": "python",
		"codeHash": "h", "containerId": "c", "exitCode": 0.0, "durationMs": 5.0, "requestId": "req-1", "tenant": "acme",
		"keyPrefix": "sk_abc", "outcome": "success"} {
		if r[k] != want {
			t.Errorf("%s = %v, want %v", k, r[k], want)
		}
	}
	// includeCode and includeOutput are off: only the hash remains.
	for _, k := range []string{"code", "stdout", "stderr"} {
		if _, ok := r[k]; ok {
			t.Errorf("record has %s with includeCode/includeOutput off", k)
		}
	}
	if r["resourceUsage"] == nil {
		t.Error("no resourceUsage with trackResources")
	}
	if b := got[1]; b["type"] != TypeNetworkBlocked || b["blocked"].(map[string]any)["host"] != "evil.test" || b["tenant"] != "acme" {
		t.Errorf("blocked record %v", b)
	}
	// The reference's field order leads the line.
	raw, _ := os.ReadFile(filepath.Join(dir, FileName))
	first := strings.SplitN(string(raw), "\n", 2)[0]
	order := []string{"executionId", "userId", "timestamp", "runtime", "codeHash", "containerId", "exitCode", "durationMs"}
	last := -1
	for _, k := range order {
		i := strings.Index(first, `"`+k+`"`)
		if i < last {
			t.Fatalf("field %s out of order in %s", k, first)
		}
		last = i
	}
}

func TestIncludeCodeAndOutput(t *testing.T) {
	dir := t.TempDir()
	l := newLogger(t, Config{Dir: dir, IncludeCode: true, IncludeOutput: true})
	l.Record(t.Context(), &Record{CodeHash: "h", Code: "print(1)", Stdout: "1", Stderr: "e",
		Resources: &Usage{CPUTimeMs: 1}})
	_ = l.Close(t.Context())
	r := lines(t, filepath.Join(dir, FileName))[0]
	if r["code"] != "print(1)" || r["stdout"] != "1" || r["stderr"] != "e" {
		t.Fatalf("%v", r)
	}
	if _, ok := r["resourceUsage"]; ok {
		t.Fatal("resourceUsage without trackResources")
	}
}

// blockingWriter blocks every write until released: a disk that hangs.
type blockingWriter struct {
	release chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// TestSlowDiskNeverBlocks: a destination that does not return fills the
// buffer; further records are dropped and counted, and Record stays fast.
func TestSlowDiskNeverBlocks(t *testing.T) {
	w := &blockingWriter{release: make(chan struct{})}
	var logBuf bytes.Buffer
	var logMu sync.Mutex
	l, err := New(Config{Writer: w, BufferSize: 8, Logger: slogTo(&logBuf, &logMu)})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := range 1000 {
		l.Record(t.Context(), &Record{ExecutionID: string(rune('a' + i%26))})
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("1000 records took %s with a blocked writer", d)
	}
	// 8 queued, at most 1 taken by the writer.
	if d := l.Dropped(); d < 1000-9 || d > 1000-8 {
		t.Fatalf("dropped %d", d)
	}
	logMu.Lock()
	warned := strings.Count(logBuf.String(), "records dropped")
	logMu.Unlock()
	if warned != 1 {
		t.Fatalf("%d warnings (rate-limited: want 1)", warned)
	}
	close(w.release)
	if err := l.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(w.buf.String(), "\n"); uint64(n) != l.Written() || n < 8 {
		t.Fatalf("wrote %d lines, Written %d", n, l.Written())
	}
}

func TestRotationAndRetention(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	// An old rotated file, an old file that is not ours, a fresh rotated one.
	old := filepath.Join(dir, "executions-20251201T000000.000000000.log")
	foreign := filepath.Join(dir, "other.log")
	fresh := filepath.Join(dir, "executions-20260109T000000.000000000.log")
	for _, p := range []string{old, foreign, fresh} {
		if err := os.WriteFile(p, []byte("{}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ago := now.Add(-40 * 24 * time.Hour)
	for _, p := range []string{old, foreign} {
		if err := os.Chtimes(p, ago, ago); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(fresh, now.Add(-24*time.Hour), now.Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	l := newLogger(t, Config{Dir: dir, RetentionDays: 30, MaxFileBytes: 600, Now: clock})
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Fatalf("old rotated file kept: %v", err)
	}
	for _, p := range []string{foreign, fresh} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s removed: %v", p, err)
		}
	}
	for i := range 20 {
		mu.Lock()
		now = now.Add(time.Second)
		mu.Unlock()
		l.Record(t.Context(), &Record{ExecutionID: strings.Repeat("x", 50), ExitCode: i, CodeHash: "h"})
	}
	if err := l.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	files, err := LogFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("no rotation: %v", files)
	}
	var total int
	for _, f := range files {
		st, _ := os.Stat(f)
		if st.Size() > 600 {
			t.Errorf("%s has %d bytes, over the 600-byte limit", f, st.Size())
		}
	}
	// Every record is readable, oldest first, across the rotated files.
	codes := []int{}
	if _, err := Read(dir, Filter{Type: TypeExecution}, func(r *Record) bool {
		if r.CodeHash == "h" {
			codes = append(codes, r.ExitCode)
		}
		total++
		return true
	}); err != nil {
		t.Fatal(err)
	}
	for i, c := range codes {
		if c != i {
			t.Fatalf("records out of order or lost: %v", codes)
		}
	}
	if len(codes) != 20 {
		t.Fatalf("read %d of 20 records", len(codes))
	}
}

func TestStdoutDestination(t *testing.T) {
	var out bytes.Buffer
	l := newLogger(t, Config{Destination: DestStdout, Stdout: &out})
	l.Record(t.Context(), &Record{ExecutionID: "e"})
	_ = l.Close(t.Context())
	if !strings.HasPrefix(out.String(), `AUDIT_LOG: {"type":"execution","executionId":"e"`) {
		t.Fatalf("%q", out.String())
	}
	if _, err := New(Config{Destination: "s3"}); err == nil || err.Error() != "Unsupported audit destination: s3" {
		t.Fatalf("%v", err)
	}
}

func TestFilter(t *testing.T) {
	ts := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	r := &Record{Type: TypeExecution, Runtime: "python", Outcome: OutcomeTimeout, Tenant: "t1", Timestamp: "2026-01-10T12:00:00.000Z"}
	for _, c := range []struct {
		f    Filter
		want bool
	}{
		{Filter{}, true},
		{Filter{Runtime: "python", Outcome: OutcomeTimeout, Tenant: "t1"}, true},
		{Filter{Runtime: "node"}, false},
		{Filter{Outcome: OutcomeSuccess}, false},
		{Filter{Tenant: "t2"}, false},
		{Filter{Type: TypeNetworkBlocked}, false},
		{Filter{Since: ts("2026-01-10T11:00:00Z")}, true},
		{Filter{Since: ts("2026-01-10T13:00:00Z")}, false},
		{Filter{Until: ts("2026-01-10T11:00:00Z")}, false},
	} {
		if got := c.f.Match(r); got != c.want {
			t.Errorf("%+v: %t", c.f, got)
		}
	}
}

func TestResolveDir(t *testing.T) {
	for _, c := range []struct{ logDir, env, want string }{
		{"/var/audit", "/env", "/var/audit"},
		{"", "/env", "/env"},
		{"", "", "/work/.isol8_audit"},
		{"rel", "", "/work/rel"},
	} {
		if got := ResolveDir(c.logDir, c.env, "/work"); got != c.want {
			t.Errorf("%+v: %s", c, got)
		}
	}
}

func TestNilLogger(t *testing.T) {
	var l *Logger
	l.Record(t.Context(), &Record{})
	l.NetworkBlocked(t.Context(), "", Blocked{})
	if l.Dropped() != 0 || l.Close(t.Context()) != nil || l.IncludeCode() {
		t.Fatal("nil logger")
	}
}

func slogTo(w *bytes.Buffer, mu *sync.Mutex) *slog.Logger {
	return slog.New(slog.NewTextHandler(lockedWriter{w, mu}, nil))
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

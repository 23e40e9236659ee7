package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/isol8/isol8/api"
)

func TestBackend(t *testing.T) {
	for conn, want := range map[string]string{
		"postgres://u:p@db:5432/isol8":    "postgres",
		"postgresql://u@db/isol8":         "postgres",
		"POSTGRES://u@db/isol8":           "postgres",
		"mysql://u:p@db:3306/isol8":       "mysql",
		"./auth.db":                       "sqlite",
		"/abs/auth.db":                    "sqlite",
		"auth.db":                         "sqlite",
		"~/.isol8/auth.db":                "sqlite",
		"postgres:/not-a-url":             "sqlite",
		"mysql:relative":                  "sqlite",
		"sqlite:///x.db":                  "sqlite",
		"/var/lib/isol8/postgres://x":     "sqlite",
		"mariadb://u@h/db":                "sqlite",
		"postgresql+psycopg://u@db/isol8": "sqlite",
	} {
		if got := Backend(conn); got != want {
			t.Errorf("Backend(%q) = %q, want %q", conn, got, want)
		}
	}
}

func TestKeyJSON(t *testing.T) {
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	k := Key{ID: "id1", Name: "n", KeyPrefix: "isol8_abcd...", TenantID: "t", CreatedAt: created,
		ExpiresAt: created.Add(time.Hour + 5*time.Millisecond)}
	got, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"id1","name":"n","keyPrefix":"isol8_abcd...","tenantId":"t","createdAt":"2026-03-01T12:00:00.000Z",` +
		`"expiresAt":"2026-03-01T13:00:00.005Z","lastUsedAt":null,"revoked":false}`
	if string(got) != want {
		t.Errorf("Key JSON:\n%s\nwant\n%s", got, want)
	}
	used := created.Add(time.Minute).In(time.FixedZone("X", 3600))
	k.LastUsedAt, k.Revoked = &used, true
	got, _ = json.Marshal(k)
	if !strings.Contains(string(got), `"lastUsedAt":"2026-03-01T12:01:00.000Z","revoked":true`) {
		t.Errorf("Key JSON with use: %s", got)
	}
	var back Key
	if err := json.Unmarshal(got, &back); err != nil || !back.ExpiresAt.Equal(k.ExpiresAt) || !back.LastUsedAt.Equal(used) {
		t.Errorf("round trip: %+v, %v", back, err)
	}
	// A Created marshals as its Key: never the token.
	c := Created{Key: k, Token: "isol8_" + strings.Repeat("ab", 32)}
	got, _ = json.Marshal(c)
	if strings.Contains(string(got), "abab") {
		t.Errorf("Created JSON leaks the token: %s", got)
	}
}

func TestDefaultPath(t *testing.T) {
	if got := DefaultPath("/home/u"); got != "/home/u/.isol8/auth.db" || Backend(got) != "sqlite" {
		t.Errorf("DefaultPath = %q", got)
	}
}

func TestRedact(t *testing.T) {
	for conn, want := range map[string]string{
		"postgres://u:hunter2@db:5432/isol8?sslmode=disable": "postgres://u:xxxxx@db:5432/isol8?sslmode=disable",
		"postgres://u@db/isol8?password=hunter2":             "postgres://u@db/isol8?password=xxxxx",
		"mysql://u:hun%40ter2@db/isol8":                      "mysql://u:xxxxx@db/isol8",
		"mysql://u@db/isol8":                                 "mysql://u@db/isol8",
		"/var/lib/isol8/auth.db":                             "/var/lib/isol8/auth.db",
	} {
		if got := Redact(conn); got != want {
			t.Errorf("Redact(%q) = %q, want %q", conn, got, want)
		}
	}
	if got := Redact("postgres://u:hunter2@db:bad port/x"); strings.Contains(got, "hunter2") {
		t.Errorf("Redact of an unparsable URL leaks the password: %q", got)
	}
}

// Connection strings that cannot work fail at Open with a clear error that
// never repeats the password, without reaching any server.
func TestOpenBadConnectionStrings(t *testing.T) {
	dir := t.TempDir()
	for conn, want := range map[string]string{
		"":                                 "path is empty",
		"   ":                              "path is empty",
		filepath.Join(dir, "a.db?mode=ro"): "must not contain '?'",
		"mysql://u:hunter2@db":             "must name one database",
		"mysql://u:hunter2@db/a/b":         "must name one database",
		"mysql://u:hunter2@/isol8":         "no host",
		"mysql://u:hunter2@db/isol8?parseTime=maybe": "invalid",
		"mysql://u:hunter2@db:bad port/isol8":        "invalid",
		"postgres://u:hunter2@db:bad port/x":         "invalid",
		"postgres://u:hunter2@db/x?sslmode=no":       "invalid",
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		s, err := Open(ctx, conn)
		cancel()
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", conn)
			continue
		}
		if !strings.Contains(err.Error(), want) || !api.IsInvalidArgument(err) {
			t.Errorf("Open(%q) = %v, want an invalid-argument error containing %q", conn, err, want)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q) error leaks the password: %v", conn, err)
		}
	}
}

// An unreachable server is an error naming the server without its
// password.
func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, conn := range []string{"postgres://u:hunter2@127.0.0.1:1/x?connect_timeout=2", "mysql://u:hunter2@127.0.0.1:1/x?timeout=2s"} {
		_, err := Open(ctx, conn)
		if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "127.0.0.1") {
			t.Errorf("Open(%s) = %v, want an error naming the host, not the password", Redact(conn), err)
		}
	}
}

func TestSQLiteFileIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "auth.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("database file mode %v, want 0600", fi.Mode().Perm())
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("created parent directory: %v, %v; want mode 0700", fi, err)
	}
}

func TestWellFormed(t *testing.T) {
	tok, err := newToken()
	if err != nil {
		t.Fatal(err)
	}
	if !wellFormed(tok) {
		t.Errorf("fresh token %q not well formed", tok)
	}
	other, _ := newToken()
	if other == tok {
		t.Error("two tokens are equal")
	}
	for _, bad := range []string{"", tok[:69], tok + "0", "isol9_" + tok[6:], tok[:69] + "g", tok[:69] + "A", " " + tok[1:]} {
		if wellFormed(bad) {
			t.Errorf("wellFormed(%q) = true", bad)
		}
	}
}

// countingStore is a Store whose DeleteExpired only counts calls: the
// sweep's schedule is pure logic.
type countingStore struct {
	Store
	mu    sync.Mutex
	calls int
	fail  bool
}

func (s *countingStore) DeleteExpired(context.Context, time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.fail {
		return 0, errors.New("database down")
	}
	return 2, nil
}

func (s *countingStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func TestRunCleanupSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &countingStore{}
		var logs bytes.Buffer
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			RunCleanup(ctx, s, time.Hour, slog.New(slog.NewTextHandler(&logs, nil)))
			close(done)
		}()
		synctest.Wait()
		if n := s.count(); n != 1 {
			t.Fatalf("sweeps at start = %d, want 1", n)
		}
		time.Sleep(59 * time.Minute)
		synctest.Wait()
		if n := s.count(); n != 1 {
			t.Fatalf("sweeps before the interval = %d, want 1", n)
		}
		time.Sleep(2*time.Hour + time.Minute)
		synctest.Wait()
		if n := s.count(); n != 4 {
			t.Fatalf("sweeps after three intervals = %d, want 4 (one at start, one per interval)", n)
		}
		cancel()
		<-done
		if !strings.Contains(logs.String(), "deleted=2") {
			t.Errorf("log does not report the deleted keys:\n%s", logs.String())
		}
	})
}

func TestRunCleanupSurvivesErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &countingStore{fail: true}
		var logs bytes.Buffer
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go RunCleanup(ctx, s, time.Minute, slog.New(slog.NewTextHandler(&logs, nil)))
		time.Sleep(2*time.Minute + time.Second)
		synctest.Wait()
		if n := s.count(); n != 3 {
			t.Errorf("sweeps = %d, want 3 (failures do not stop the loop)", n)
		}
		if !strings.Contains(logs.String(), "database down") {
			t.Errorf("failure not logged:\n%s", logs.String())
		}
	})
}

func TestRunCleanupDisabled(t *testing.T) {
	s := &countingStore{}
	RunCleanup(t.Context(), s, 0, nil) // returns at once
	if s.count() != 0 {
		t.Errorf("a zero interval swept %d times", s.count())
	}
}

package auth

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/internal/testdb"
)

// The same suite runs against each backend: SQLite always (it needs
// nothing but a temporary file), PostgreSQL and MariaDB on servers the
// tests start themselves (internal/testdb).

// backend gives the suite fresh databases and a raw view of them.
type backend struct {
	// newConn returns the connection string of a fresh, empty database.
	newConn func(t *testing.T) string
	// raw opens conn's database directly, bypassing the store.
	raw func(t *testing.T, conn string) *sql.DB
	// files returns the files the database lives in (SQLite only), so the
	// suite can check the plaintext is in none of their bytes.
	files func(conn string) []string
}

func TestStoreSQLite(t *testing.T) {
	runSuite(t, backend{
		newConn: func(t *testing.T) string { return filepath.Join(t.TempDir(), "state", "auth.db") },
		raw: func(t *testing.T, conn string) *sql.DB {
			db, err := openSQLite(conn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		},
		files: func(conn string) []string { return []string{conn, conn + "-wal"} },
	})
}

func TestStorePostgreSQL(t *testing.T) {
	runServerSuite(t, testdb.PostgreSQL(t))
}

func TestStoreMariaDB(t *testing.T) {
	runServerSuite(t, testdb.MariaDB(t))
}

func runServerSuite(t *testing.T, srv *testdb.Server) {
	runSuite(t, backend{
		newConn: func(t *testing.T) string { return srv.NewDatabase(t) },
		raw:     func(t *testing.T, conn string) *sql.DB { return srv.DB(t, conn) },
		files:   func(string) []string { return nil },
	})
}

// fakeClock is a settable clock; Tick advances it by step on every read so
// that creation order is distinct even at millisecond precision.
type fakeClock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func newClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.now
	c.now = c.now.Add(c.step)
	return t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func open(t *testing.T, conn string, opts ...Option) Store {
	t.Helper()
	s, err := OpenWith(t.Context(), conn, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func create(t *testing.T, s Store, name, tenant string, ttl time.Duration) Created {
	t.Helper()
	c, err := s.Create(t.Context(), name, tenant, ttl)
	if err != nil {
		t.Fatalf("Create(%q, %q, %s): %v", name, tenant, ttl, err)
	}
	return c
}

func wantInvalidKey(t *testing.T, err error, what string) {
	t.Helper()
	if !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("%s: err = %v, want ErrInvalidKey", what, err)
	}
	if !api.IsPermissionDenied(err) {
		t.Errorf("%s: %v is not of the permission-denied class", what, err)
	}
}

func runSuite(t *testing.T, b backend) {
	t.Run("CreateVerify", func(t *testing.T) {
		clk := newClock()
		s := open(t, b.newConn(t), WithClock(clk.Now))
		start := clk.Now()
		c := create(t, s, "ci key", "org-1", time.Hour)
		if len(c.Token) != 70 || !strings.HasPrefix(c.Token, "isol8_") || !wellFormed(c.Token) {
			t.Errorf("token %q: want isol8_ and 64 lowercase hex characters", c.Token)
		}
		if c.KeyPrefix != c.Token[:10]+"..." {
			t.Errorf("KeyPrefix = %q, want %q", c.KeyPrefix, c.Token[:10]+"...")
		}
		if u, err := uuid.Parse(c.ID); err != nil || u.Version() != 4 || u.String() != c.ID {
			t.Errorf("ID %q is not a canonical v4 UUID (%v)", c.ID, err)
		}
		if c.Name != "ci key" || c.TenantID != "org-1" || c.Revoked || c.LastUsedAt != nil {
			t.Errorf("created key = %+v", c.Key)
		}
		if !c.CreatedAt.Equal(start) || !c.ExpiresAt.Equal(start.Add(time.Hour)) {
			t.Errorf("CreatedAt %s ExpiresAt %s, want %s and one hour later", c.CreatedAt, c.ExpiresAt, start)
		}
		clk.Add(time.Minute)
		k, err := s.Verify(t.Context(), c.Token)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if k.ID != c.ID || k.TenantID != "org-1" || k.Name != "ci key" || !k.ExpiresAt.Equal(c.ExpiresAt) || !k.CreatedAt.Equal(c.CreatedAt) {
			t.Errorf("Verify = %+v, want the created key %+v", k, c.Key)
		}
		if k.LastUsedAt == nil || !k.LastUsedAt.Equal(start.Add(time.Minute)) {
			t.Errorf("Verify LastUsedAt = %v, want %s", k.LastUsedAt, start.Add(time.Minute))
		}
		keys, err := s.List(t.Context(), "")
		if err != nil || len(keys) != 1 {
			t.Fatalf("List = %v, %v; want one key", keys, err)
		}
		if keys[0].LastUsedAt == nil || !keys[0].LastUsedAt.Equal(start.Add(time.Minute)) {
			t.Errorf("stored LastUsedAt = %v, want %s", keys[0].LastUsedAt, start.Add(time.Minute))
		}
		if keys[0].KeyPrefix != c.KeyPrefix || keys[0].Revoked {
			t.Errorf("listed %+v", keys[0])
		}
	})

	t.Run("DefaultTenant", func(t *testing.T) {
		s := open(t, b.newConn(t))
		c := create(t, s, "k", "", time.Hour)
		if c.TenantID != DefaultTenant {
			t.Errorf("TenantID = %q, want %q", c.TenantID, DefaultTenant)
		}
		keys, err := s.List(t.Context(), DefaultTenant)
		if err != nil || len(keys) != 1 || keys[0].ID != c.ID {
			t.Errorf("List(default) = %v, %v", keys, err)
		}
	})

	t.Run("VerifyRejects", func(t *testing.T) {
		s := open(t, b.newConn(t))
		c := create(t, s, "k", "t1", time.Hour)
		other, err := newToken()
		if err != nil {
			t.Fatal(err)
		}
		for name, token := range map[string]string{
			"unknown":        other,
			"empty":          "",
			"prefix only":    "isol8_",
			"upper case":     strings.ToUpper(c.Token[:6]) + strings.ToUpper(c.Token[6:]),
			"hex upper case": c.Token[:6] + strings.ToUpper(c.Token[6:]),
			"bearer":         "Bearer " + c.Token,
			"trailing space": c.Token + " ",
			"truncated":      c.Token[:69],
			"the hash":       Hash(c.Token),
			"the prefix":     c.KeyPrefix,
			"huge":           c.Token + strings.Repeat("a", 1<<20),
			"nul":            c.Token[:69] + "\x00",
		} {
			_, err := s.Verify(t.Context(), token)
			wantInvalidKey(t, err, name)
		}
		if _, err := s.Verify(t.Context(), c.Token); err != nil {
			t.Errorf("the real key after the bad ones: %v", err)
		}
	})

	t.Run("Revoke", func(t *testing.T) {
		s := open(t, b.newConn(t))
		c := create(t, s, "k", "t1", time.Hour)
		keep := create(t, s, "keep", "t1", time.Hour)
		if err := s.Revoke(t.Context(), c.ID); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		_, err := s.Verify(t.Context(), c.Token)
		wantInvalidKey(t, err, "revoked key")
		if _, err := s.Verify(t.Context(), keep.Token); err != nil {
			t.Errorf("the other key: %v", err)
		}
		if err := s.Revoke(t.Context(), c.ID); err != nil {
			t.Errorf("revoking twice: %v", err)
		}
		keys, err := s.List(t.Context(), "t1")
		if err != nil || len(keys) != 2 {
			t.Fatalf("List = %v, %v", keys, err)
		}
		for _, k := range keys {
			if k.Revoked != (k.ID == c.ID) {
				t.Errorf("key %s revoked = %v", k.Name, k.Revoked)
			}
		}
		for _, id := range []string{uuid.NewString(), "", "nope", "../../etc", strings.ToUpper(c.ID), "{" + c.ID + "}",
			"urn:uuid:" + c.ID, c.ID + "' OR '1'='1", strings.Repeat("x", 1<<20)} {
			err := s.Revoke(t.Context(), id)
			if !errors.Is(err, ErrNotFound) || !api.IsNotFound(err) {
				t.Errorf("Revoke(%.40q) = %v, want ErrNotFound of the not-found class", id, err)
			}
		}
		if _, err := s.Verify(t.Context(), keep.Token); err != nil {
			t.Errorf("the other key after hostile revokes: %v", err)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		clk := newClock()
		s := open(t, b.newConn(t), WithClock(clk.Now))
		c := create(t, s, "k", "t1", time.Hour)
		clk.Add(time.Hour) // exactly at expiry: still valid
		if _, err := s.Verify(t.Context(), c.Token); err != nil {
			t.Fatalf("at expiry: %v", err)
		}
		clk.Add(time.Millisecond)
		_, err := s.Verify(t.Context(), c.Token)
		wantInvalidKey(t, err, "expired key")
	})

	t.Run("DeleteExpired", func(t *testing.T) {
		clk := newClock()
		s := open(t, b.newConn(t), WithClock(clk.Now))
		short := create(t, s, "short", "t1", time.Minute)
		live := create(t, s, "live", "t1", 2*time.Hour)
		revoked := create(t, s, "revoked", "t2", 2*time.Hour)
		if err := s.Revoke(t.Context(), revoked.ID); err != nil {
			t.Fatal(err)
		}
		now := clk.Now()
		n, err := s.DeleteExpired(t.Context(), now)
		if err != nil || n != 1 {
			t.Fatalf("DeleteExpired before expiry = %d, %v; want 1 (the revoked key)", n, err)
		}
		n, err = s.DeleteExpired(t.Context(), now.Add(time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("DeleteExpired after an hour = %d, %v; want 1 (the expired key)", n, err)
		}
		keys, err := s.List(t.Context(), "")
		if err != nil || len(keys) != 1 || keys[0].ID != live.ID {
			t.Fatalf("List after cleanup = %+v, %v; want only %s", keys, err, live.ID)
		}
		if n, err := s.DeleteExpired(t.Context(), now.Add(time.Hour)); err != nil || n != 0 {
			t.Errorf("second sweep = %d, %v; want 0", n, err)
		}
		if err := s.Revoke(t.Context(), short.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoking a deleted key: %v, want ErrNotFound", err)
		}
	})

	t.Run("ListTenants", func(t *testing.T) {
		clk := newClock()
		clk.step = time.Millisecond
		s := open(t, b.newConn(t), WithClock(clk.Now))
		a1 := create(t, s, "a1", "alpha", time.Hour)
		b1 := create(t, s, "b1", "beta", time.Hour)
		a2 := create(t, s, "a2", "alpha", time.Hour)
		ids := func(keys []Key) []string {
			var out []string
			for _, k := range keys {
				out = append(out, k.Name)
			}
			return out
		}
		for tenant, want := range map[string][]Key{
			"alpha": {a1.Key, a2.Key}, "beta": {b1.Key}, "": {a1.Key, b1.Key, a2.Key}, "gamma": {}, "ALPHA": {},
		} {
			got, err := s.List(t.Context(), tenant)
			if err != nil {
				t.Fatalf("List(%q): %v", tenant, err)
			}
			if got == nil || fmt.Sprint(ids(got)) != fmt.Sprint(ids(want)) {
				t.Errorf("List(%q) = %v, want %v (in creation order, never nil)", tenant, ids(got), ids(want))
			}
		}
		for _, bad := range []string{"bad tenant", "-x", "a;DROP TABLE api_keys", "ü", strings.Repeat("t", MaxTenantLen+1)} {
			if _, err := s.List(t.Context(), bad); !api.IsInvalidArgument(err) {
				t.Errorf("List(%.40q) = %v, want an invalid-argument error", bad, err)
			}
		}
	})

	t.Run("HashOnly", func(t *testing.T) {
		conn := b.newConn(t)
		s := open(t, conn)
		c := create(t, s, "secret", "t1", time.Hour)
		if _, err := s.Verify(t.Context(), c.Token); err != nil {
			t.Fatal(err)
		}
		raw := b.raw(t, conn)
		rows, err := raw.QueryContext(t.Context(), "SELECT * FROM api_keys")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		secret := c.Token[len(TokenPrefix):]
		hashSeen := false
		n := 0
		for rows.Next() {
			n++
			vals := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				if strings.Contains(v.String, secret[:16]) {
					t.Errorf("column %s holds part of the plaintext key: %q", cols[i], v.String)
				}
				if v.String == Hash(c.Token) {
					hashSeen = true
				}
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if n != 1 || !hashSeen {
			t.Errorf("rows = %d, SHA-256 of the key stored = %v; want 1 row holding the hash", n, hashSeen)
		}
		for _, f := range b.files(conn) {
			data, err := os.ReadFile(f)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			if bytes.Contains(data, []byte(secret[:16])) {
				t.Errorf("%s holds part of the plaintext key", f)
			}
		}
	})

	t.Run("HostileInput", func(t *testing.T) {
		s := open(t, b.newConn(t))
		for _, tc := range []struct {
			name, key, tenant string
			ttl               time.Duration
		}{
			{"empty name", "", "t", time.Hour},
			{"blank name", " \t ", "t", time.Hour},
			{"huge name", strings.Repeat("n", MaxNameLen+1), "t", time.Hour},
			{"megabyte name", strings.Repeat("n", 1<<20), "t", time.Hour},
			{"invalid UTF-8 name", "a\xff", "t", time.Hour},
			{"NUL in name", "a\x00b", "t", time.Hour},
			{"newline in name", "a\nb", "t", time.Hour},
			{"space in tenant", "k", "bad tenant", time.Hour},
			{"quote in tenant", "k", "t'1", time.Hour},
			{"leading dash tenant", "k", "-t", time.Hour},
			{"non-ASCII tenant", "k", "tenänt", time.Hour},
			{"huge tenant", "k", strings.Repeat("t", MaxTenantLen+1), time.Hour},
			{"zero ttl", "k", "t", 0},
			{"negative ttl", "k", "t", -time.Hour},
			{"huge ttl", "k", "t", MaxTTL + time.Millisecond},
		} {
			_, err := s.Create(t.Context(), tc.key, tc.tenant, tc.ttl)
			if !api.IsInvalidArgument(err) {
				t.Errorf("%s: err = %v, want an invalid-argument error", tc.name, err)
			}
		}
		if keys, err := s.List(t.Context(), ""); err != nil || len(keys) != 0 {
			t.Errorf("after rejected creates List = %v, %v; want none", keys, err)
		}
		// The limits themselves are accepted and round-trip.
		name := strings.Repeat("é", MaxNameLen/2)
		tenant := "a" + strings.Repeat("b.-_:@/+=", (MaxTenantLen-1)/9)
		c := create(t, s, name, tenant, MaxTTL)
		k, err := s.Verify(t.Context(), c.Token)
		if err != nil || k.Name != name || k.TenantID != tenant || !k.ExpiresAt.Equal(c.ExpiresAt) {
			t.Errorf("limits: Verify = %+v, %v", k, err)
		}
	})

	t.Run("Reopen", func(t *testing.T) {
		conn := b.newConn(t)
		s1, err := Open(t.Context(), conn)
		if err != nil {
			t.Fatal(err)
		}
		c := create(t, s1, "k", "t1", time.Hour)
		if err := s1.Close(); err != nil {
			t.Fatal(err)
		}
		s2 := open(t, conn)
		if _, err := s2.Verify(t.Context(), c.Token); err != nil {
			t.Errorf("key after reopening: %v", err)
		}
		wantVersions(t, b.raw(t, conn), []int{1})
	})

	t.Run("ConcurrentOpen", func(t *testing.T) {
		conn := b.newConn(t)
		const n = 8
		stores := make([]Store, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { stores[i], errs[i] = OpenWith(t.Context(), conn) })
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Errorf("Open %d: %v", i, errs[i])
				continue
			}
			t.Cleanup(func() { stores[i].Close() })
		}
		if t.Failed() {
			return
		}
		wantVersions(t, b.raw(t, conn), []int{1})
		// Every store sees the same table.
		c := create(t, stores[0], "k", "t1", time.Hour)
		if _, err := stores[n-1].Verify(t.Context(), c.Token); err != nil {
			t.Errorf("key made through one store, verified through another: %v", err)
		}
	})

	t.Run("MigrationTwo", func(t *testing.T) {
		conn := b.newConn(t)
		s1 := open(t, conn)
		c := create(t, s1, "k", "t1", time.Hour)
		two := migration{version: 2, name: "test: add a table", stmts: func(*dialect) []string {
			return []string{"CREATE TABLE isol8_test_m2 (x INTEGER)"}
		}}
		s2 := open(t, conn, withMigrations(append(append([]migration{}, migrations...), two)))
		if _, err := s2.Verify(t.Context(), c.Token); err != nil {
			t.Errorf("key after migration 2: %v", err)
		}
		raw := b.raw(t, conn)
		wantVersions(t, raw, []int{1, 2})
		if _, err := raw.ExecContext(t.Context(), "INSERT INTO isol8_test_m2 (x) VALUES (1)"); err != nil {
			t.Errorf("migration 2's table: %v", err)
		}
		// A binary that knows only migration 1 refuses the newer schema.
		_, err := Open(t.Context(), conn)
		if err == nil || !strings.Contains(err.Error(), "newer than this isol8 knows") {
			t.Errorf("old binary on a newer schema: err = %v", err)
		}
	})
}

func withMigrations(ms []migration) Option { return func(o *options) { o.migrations = ms } }

func wantVersions(t *testing.T, raw *sql.DB, want []int) {
	t.Helper()
	rows, err := raw.QueryContext(context.WithoutCancel(t.Context()), "SELECT version FROM isol8_schema_version ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("schema versions recorded = %v, want %v (each migration once)", got, want)
	}
}

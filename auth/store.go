package auth

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/isol8/isol8/api"
)

// sqlStore is the Store over database/sql, for every backend.
type sqlStore struct {
	db  *sql.DB
	d   *dialect
	now func() time.Time
	q   queries
}

var _ Store = (*sqlStore)(nil)

// maxConns bounds a store's database connections.
const maxConns = 16

// queries are the statements, built once for the dialect.
type queries struct {
	insert, byHash, touch, list, listTenant, revoke, deleteExpired string
}

func openSQL(ctx context.Context, conn string, o options) (_ Store, retErr error) {
	db, d, err := openDB(conn)
	if err != nil {
		return nil, fmt.Errorf("open auth store (%s): %w", Backend(conn), err)
	}
	defer func() {
		if retErr != nil {
			db.Close()
		}
	}()
	// Bounded, so that a burst of requests cannot use up a database
	// server's connection slots; idle ones are kept for the next burst.
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	err = retryBusy(ctx, d, func() error {
		if err := db.PingContext(ctx); err != nil {
			return fmt.Errorf("open auth store %s: %w", Redact(conn), err)
		}
		if err := migrate(ctx, db, d, o.migrations, o.now(), o.log); err != nil {
			return fmt.Errorf("migrate auth store %s: %w", Redact(conn), err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &sqlStore{db: db, d: d, now: o.now, q: buildQueries(d)}, nil
}

// retryBusy runs open again while it fails only because another process
// holds the database. SQLite's busy timeout covers ordinary statements,
// but switching a new file to WAL mode while another process does the
// same fails at once with SQLITE_BUSY, without waiting.
func retryBusy(ctx context.Context, d *dialect, open func() error) error {
	deadline := time.Now().Add(migrationLockTimeout)
	for {
		err := open()
		if err == nil || d.busy == nil || !d.busy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(5+rand.IntN(45)) * time.Millisecond):
		}
	}
}

func buildQueries(d *dialect) queries {
	c := d.cols
	keyCols := strings.Join([]string{c.ID, c.Name, c.KeyPrefix, c.TenantID, c.CreatedAt, c.ExpiresAt, c.LastUsedAt, c.Revoked}, ", ")
	return queries{
		insert: d.bind(fmt.Sprintf("INSERT INTO api_keys (%s, %s, %s, %s, %s, %s, %s, %s) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			c.ID, c.Name, c.KeyHash, c.KeyPrefix, c.TenantID, c.CreatedAt, c.ExpiresAt, c.Revoked)),
		byHash:        d.bind(fmt.Sprintf("SELECT %s, %s FROM api_keys WHERE %s = ?", keyCols, c.KeyHash, c.KeyHash)),
		touch:         d.bind(fmt.Sprintf("UPDATE api_keys SET %s = ? WHERE %s = ?", c.LastUsedAt, c.ID)),
		list:          fmt.Sprintf("SELECT %s FROM api_keys ORDER BY %s, %s", keyCols, c.CreatedAt, c.ID),
		listTenant:    d.bind(fmt.Sprintf("SELECT %s FROM api_keys WHERE %s = ? ORDER BY %s, %s", keyCols, c.TenantID, c.CreatedAt, c.ID)),
		revoke:        d.bind(fmt.Sprintf("UPDATE api_keys SET %s = ? WHERE %s = ?", c.Revoked, c.ID)),
		deleteExpired: d.bind(fmt.Sprintf("DELETE FROM api_keys WHERE %s = ? OR %s < ?", c.Revoked, c.ExpiresAt)),
	}
}

// clock returns the store's current time as stored: UTC, milliseconds.
func (s *sqlStore) clock() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

func (s *sqlStore) Create(ctx context.Context, name, tenantID string, ttl time.Duration) (Created, error) {
	if tenantID == "" {
		tenantID = DefaultTenant
	}
	if err := firstErr(validName(name), validTenant(tenantID), validTTL(ttl)); err != nil {
		return Created{}, err
	}
	token, err := newToken()
	if err != nil {
		return Created{}, err
	}
	id, err := newID()
	if err != nil {
		return Created{}, err
	}
	now := s.clock()
	k := Key{
		ID:        id,
		Name:      name,
		KeyPrefix: prefixOf(token),
		TenantID:  tenantID,
		CreatedAt: now,
		ExpiresAt: now.Add(ttl).Truncate(time.Millisecond),
	}
	_, err = s.db.ExecContext(ctx, s.q.insert, k.ID, k.Name, Hash(token), k.KeyPrefix, k.TenantID,
		s.d.timeArg(k.CreatedAt), s.d.timeArg(k.ExpiresAt), false)
	if err != nil {
		return Created{}, fmt.Errorf("store API key: %w", err)
	}
	return Created{Key: k, Token: token}, nil
}

// firstErr returns the first non-nil error (validation reports one problem
// at a time, in argument order).
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// invalidKey wraps ErrInvalidKey with why (for logs) and the forbidden
// class.
func invalidKey(format string, args ...any) error {
	return api.PermissionDenied(fmt.Errorf("%w: "+format, append([]any{ErrInvalidKey}, args...)...))
}

func (s *sqlStore) Verify(ctx context.Context, token string) (Key, error) {
	if !wellFormed(token) {
		return Key{}, invalidKey("malformed token")
	}
	want := Hash(token)
	var (
		k      Key
		stored string
	)
	row := s.db.QueryRowContext(ctx, s.q.byHash, want)
	err := scanKey(row, &k, &stored)
	if errors.Is(err, sql.ErrNoRows) {
		return Key{}, invalidKey("unknown key")
	}
	if err != nil {
		return Key{}, fmt.Errorf("look up API key: %w", err)
	}
	// The lookup already matched; comparing again in constant time guards
	// against a collation that matches loosely.
	if subtle.ConstantTimeCompare([]byte(stored), []byte(want)) != 1 {
		return Key{}, invalidKey("unknown key")
	}
	if k.Revoked {
		return Key{}, invalidKey("key %s is revoked", k.ID)
	}
	now := s.clock()
	if now.After(k.ExpiresAt) {
		return Key{}, invalidKey("key %s expired at %s", k.ID, k.ExpiresAt.Format(time.RFC3339))
	}
	if _, err := s.db.ExecContext(ctx, s.q.touch, s.d.timeArg(now), k.ID); err != nil {
		return Key{}, fmt.Errorf("record API key use: %w", err)
	}
	k.LastUsedAt = &now
	return k, nil
}

func (s *sqlStore) List(ctx context.Context, tenantID string) ([]Key, error) {
	var (
		rows *sql.Rows
		err  error
	)
	if tenantID == "" {
		rows, err = s.db.QueryContext(ctx, s.q.list)
	} else {
		if err := validTenant(tenantID); err != nil {
			return nil, err
		}
		rows, err = s.db.QueryContext(ctx, s.q.listTenant, tenantID)
	}
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	defer rows.Close()
	keys := []Key{}
	for rows.Next() {
		var k Key
		if err := scanKey(rows, &k, nil); err != nil {
			return nil, fmt.Errorf("list API keys: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	return keys, nil
}

func (s *sqlStore) Revoke(ctx context.Context, id string) error {
	// Only canonical ids can exist; anything else is unknown without asking
	// the database.
	if u, err := uuid.Parse(id); err != nil || u.String() != id {
		return api.NotFound(fmt.Errorf("%w: %q", ErrNotFound, truncate(id, 64)))
	}
	res, err := s.db.ExecContext(ctx, s.q.revoke, true, id)
	if err != nil {
		return fmt.Errorf("revoke API key %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("revoke API key %s: %w", id, err)
	}
	if n == 0 {
		return api.NotFound(fmt.Errorf("%w: %s", ErrNotFound, id))
	}
	return nil
}

func (s *sqlStore) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, s.q.deleteExpired, true, s.d.timeArg(now))
	if err != nil {
		return 0, fmt.Errorf("delete expired API keys: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete expired API keys: %w", err)
	}
	return int(n), nil
}

func (s *sqlStore) Close() error { return s.db.Close() }

// scanKey reads the key columns (and, when hash is not nil, the hash after
// them) from a row.
func scanKey(row interface{ Scan(...any) error }, k *Key, hash *string) error {
	var created, expires, used dbTime
	dest := []any{&k.ID, &k.Name, &k.KeyPrefix, &k.TenantID, &created, &expires, &used, &k.Revoked}
	if hash != nil {
		dest = append(dest, hash)
	}
	if err := row.Scan(dest...); err != nil {
		return err
	}
	k.CreatedAt, k.ExpiresAt = created.t, expires.t
	if used.valid {
		t := used.t
		k.LastUsedAt = &t
	}
	return nil
}

// truncate shortens hostile input before it goes into a message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Package auth stores the server's DB-backed API keys: creation, verification,
// listing, revocation and the sweep of expired and revoked keys.
//
// Keys live in one table, api_keys, in SQLite (a file, the embedded default,
// through a pure-Go driver so the binary needs no cgo for it), PostgreSQL or
// MySQL/MariaDB, all through database/sql. Only the SHA-256 of a key is
// stored; the plaintext exists once, in the value Create returns. The schema
// is versioned and migrated when a store is opened.
//
// The package knows nothing of HTTP, the master key or sessions: the server
// maps its errors to status codes (ErrInvalidKey is a 403, ErrNotFound a 404,
// an api.IsInvalidArgument error a 400).
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/isol8/isol8/api"
)

// ErrInvalidKey is returned by Verify for a token that is unknown, malformed,
// expired or revoked. Callers test it with errors.Is; the wrapping text says
// which case it was, for logs, and must not be shown to the client.
var ErrInvalidKey = errors.New("invalid API key")

// ErrNotFound is returned by Revoke for an id no key has.
var ErrNotFound = errors.New("key not found")

// TokenPrefix starts every plaintext key.
const TokenPrefix = "isol8_"

// tokenLen is the length of a plaintext key: the prefix and 32 random bytes
// in lowercase hex.
const tokenLen = len(TokenPrefix) + 64

// DefaultTenant is the tenant of a key created without one.
const DefaultTenant = "default"

// Limits on what a caller may store. A name is free text shown in listings;
// a tenant id is an identifier the server compares.
const (
	MaxNameLen   = 256 // bytes
	MaxTenantLen = 128 // bytes
	// MaxTTL bounds a key's lifetime so that expiry times stay inside every
	// backend's timestamp range (and a TTL given in milliseconds cannot
	// overflow a time.Duration on the way in).
	MaxTTL = 100 * 365 * 24 * time.Hour
)

// Key is a stored API key as listings show it: never the key itself.
type Key struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	KeyPrefix  string     `json:"keyPrefix"`
	TenantID   string     `json:"tenantId"`
	CreatedAt  time.Time  `json:"createdAt"`
	ExpiresAt  time.Time  `json:"expiresAt"`
	LastUsedAt *time.Time `json:"lastUsedAt"`
	Revoked    bool       `json:"revoked"`
}

// TimeFormat is how the REST API writes a key's times: ISO-8601 in UTC
// with milliseconds, as JavaScript's Date.toISOString.
const TimeFormat = "2006-01-02T15:04:05.000Z"

// FormatTime writes t in TimeFormat.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

// MarshalJSON writes the key as GET /auth/keys lists it: times in
// TimeFormat, lastUsedAt null until the key is first used.
func (k Key) MarshalJSON() ([]byte, error) {
	var used *string
	if k.LastUsedAt != nil {
		s := FormatTime(*k.LastUsedAt)
		used = &s
	}
	return json.Marshal(struct {
		ID         string  `json:"id"`
		Name       string  `json:"name"`
		KeyPrefix  string  `json:"keyPrefix"`
		TenantID   string  `json:"tenantId"`
		CreatedAt  string  `json:"createdAt"`
		ExpiresAt  string  `json:"expiresAt"`
		LastUsedAt *string `json:"lastUsedAt"`
		Revoked    bool    `json:"revoked"`
	}{k.ID, k.Name, k.KeyPrefix, k.TenantID, FormatTime(k.CreatedAt), FormatTime(k.ExpiresAt), used, k.Revoked})
}

// Created is a key just made, with its plaintext Token ("isol8_" + 64 hex
// characters). The token is shown to the caller once and stored nowhere; a
// Created marshals to JSON as its Key (Key's MarshalJSON is promoted), so
// marshalling one by mistake cannot leak the token.
type Created struct {
	Key
	Token string `json:"-"`
}

// Store is an API key database.
type Store interface {
	// Create makes a key named name for tenantID ("" means DefaultTenant)
	// that expires ttl from now. Bad input is an api.IsInvalidArgument error.
	Create(ctx context.Context, name, tenantID string, ttl time.Duration) (Created, error)
	// Verify returns the key whose token this is and records the use
	// (LastUsedAt). An unknown, malformed, expired or revoked token is an
	// error wrapping ErrInvalidKey.
	Verify(ctx context.Context, token string) (Key, error)
	// List returns the keys of tenantID ("" means every tenant) in the
	// order they were created.
	List(ctx context.Context, tenantID string) ([]Key, error)
	// Revoke marks a key revoked; an unknown id is an error wrapping
	// ErrNotFound. Revoking a revoked key succeeds.
	Revoke(ctx context.Context, id string) error
	// DeleteExpired removes the keys that expired before now and the
	// revoked ones, and returns how many it removed.
	DeleteExpired(ctx context.Context, now time.Time) (int, error)
	// Close releases the database connections.
	Close() error
}

// Option changes how OpenWith builds a store.
type Option func(*options)

type options struct {
	now        func() time.Time
	log        *slog.Logger
	migrations []migration
}

// WithClock sets the store's clock (creation, expiry and last-use times).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sets the logger for migrations.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// Open opens the key store conn names and brings its schema up to date.
// conn selects the backend by its prefix: postgres:// or postgresql:// is a
// PostgreSQL URL, mysql:// a MySQL/MariaDB URL, anything else the path of a
// SQLite file (its parent directory is created; "~" is not expanded).
func Open(ctx context.Context, conn string) (Store, error) { return OpenWith(ctx, conn) }

// OpenWith is Open with options.
func OpenWith(ctx context.Context, conn string, opts ...Option) (Store, error) {
	o := options{now: time.Now, log: slog.New(slog.DiscardHandler), migrations: migrations}
	for _, opt := range opts {
		opt(&o)
	}
	return openSQL(ctx, conn, o)
}

// DefaultPath is the SQLite file used when DB-backed auth is enabled
// without a connection string: ~/.isol8/auth.db below home.
func DefaultPath(home string) string { return filepath.Join(home, ".isol8", "auth.db") }

// Backend names the database conn selects: "postgres", "mysql" or "sqlite".
func Backend(conn string) string {
	switch {
	case hasPrefixFold(conn, "postgres://"), hasPrefixFold(conn, "postgresql://"):
		return "postgres"
	case hasPrefixFold(conn, "mysql://"):
		return "mysql"
	default:
		return "sqlite"
	}
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// Hash returns the stored form of a token: its SHA-256 in lowercase hex.
func Hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// prefixOf is what listings show of a token.
func prefixOf(token string) string { return token[:10] + "..." }

// newToken returns a fresh plaintext key.
func newToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate API key: %w", err)
	}
	return TokenPrefix + hex.EncodeToString(b[:]), nil
}

// wellFormed reports whether token has the shape of a key this package
// makes, so that garbage never reaches the database.
func wellFormed(token string) bool {
	if len(token) != tokenLen || !strings.HasPrefix(token, TokenPrefix) {
		return false
	}
	for _, c := range token[len(TokenPrefix):] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// newID returns a key id: a random (version 4) UUID.
func newID() (string, error) {
	id, err := uuid.NewRandom()
	if err != nil {
		return "", fmt.Errorf("generate key id: %w", err)
	}
	return id.String(), nil
}

// validName checks a key name: required, bounded, printable text.
func validName(name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return api.InvalidArgumentf("name is required")
	case len(name) > MaxNameLen:
		return api.InvalidArgumentf("name is too long: %d bytes (at most %d)", len(name), MaxNameLen)
	case !utf8.ValidString(name):
		return api.InvalidArgumentf("name is not valid UTF-8")
	case strings.ContainsFunc(name, unicode.IsControl):
		return api.InvalidArgumentf("name contains control characters")
	}
	return nil
}

// validTenant checks a tenant id: 1 to MaxTenantLen of ASCII letters,
// digits and . _ - : @ / + =, starting with a letter or digit.
func validTenant(tenant string) error {
	if tenant == "" {
		return api.InvalidArgumentf("tenantId is empty")
	}
	if len(tenant) > MaxTenantLen {
		return api.InvalidArgumentf("tenantId is too long: %d bytes (at most %d)", len(tenant), MaxTenantLen)
	}
	for i, c := range tenant {
		alnum := c < utf8.RuneSelf && (unicode.IsLetter(c) || unicode.IsDigit(c))
		if alnum || (i > 0 && strings.ContainsRune("._-:@/+=", c)) {
			continue
		}
		return api.InvalidArgumentf("invalid tenantId %q: use letters, digits and . _ - : @ / + = (starting with a letter or digit)", tenant)
	}
	return nil
}

// validTTL checks a key lifetime.
func validTTL(ttl time.Duration) error {
	switch {
	case ttl <= 0:
		return api.InvalidArgumentf("ttl must be positive, got %s", ttl)
	case ttl > MaxTTL:
		return api.InvalidArgumentf("ttl is too long: %s (at most %s)", ttl, MaxTTL)
	}
	return nil
}

// Redact returns conn with any password in it replaced by "xxxxx", for logs
// and messages.
func Redact(conn string) string {
	if Backend(conn) == "sqlite" {
		return conn
	}
	u, err := parseURL(conn)
	if err != nil {
		return Backend(conn) + "://(unparsable connection string)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = userPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

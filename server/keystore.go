package server

// The database key store is built as its own package (auth); until it is
// merged, this file declares the shapes the server relies on. Replacing
// this file with aliases to that package's types is the whole merge.

import (
	"context"
	"errors"
	"time"
)

// KeyStore keeps DB-backed API keys. Tokens are stored hashed; Verify
// refuses unknown, expired and revoked tokens with an error wrapping
// ErrInvalidKey and records the use of a valid one.
type KeyStore interface {
	Create(ctx context.Context, name, tenantID string, ttl time.Duration) (Created, error)
	Verify(ctx context.Context, token string) (Key, error)
	List(ctx context.Context, tenantID string) ([]Key, error)
	Revoke(ctx context.Context, id string) error
	Close() error
}

// Key is a stored API key, without its secret.
type Key struct {
	ID         string
	Name       string
	KeyPrefix  string
	TenantID   string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	LastUsedAt *time.Time
	Revoked    bool
}

// Created is a new key and its plaintext token, shown once.
type Created struct {
	Key
	Token string
}

// Errors of a KeyStore.
var (
	ErrInvalidKey = errors.New("invalid API key")
	ErrNotFound   = errors.New("key not found")
)

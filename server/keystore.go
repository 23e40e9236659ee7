package server

import (
	"context"
	"time"

	"github.com/isol8/isol8/auth"
)

// KeyStore keeps DB-backed API keys (package auth). Tokens are stored
// hashed; Verify refuses unknown, expired and revoked tokens with an error
// wrapping ErrInvalidKey and records the use of a valid one. It is the
// part of auth.Store the routes use, so tests and embedders can pass any
// store.
type KeyStore interface {
	Create(ctx context.Context, name, tenantID string, ttl time.Duration) (Created, error)
	Verify(ctx context.Context, token string) (Key, error)
	List(ctx context.Context, tenantID string) ([]Key, error)
	Revoke(ctx context.Context, id string) error
	Close() error
}

// Key is a stored API key, without its secret.
type Key = auth.Key

// Created is a new key and its plaintext token, shown once.
type Created = auth.Created

// Errors of a KeyStore.
var (
	ErrInvalidKey = auth.ErrInvalidKey
	ErrNotFound   = auth.ErrNotFound
)

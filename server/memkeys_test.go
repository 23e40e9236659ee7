package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
)

// memKeys is an in-memory KeyStore for the route tests: pure logic, the
// database stores are tested in their own package.
type memKeys struct {
	mu   sync.Mutex
	keys []*memKey
}

type memKey struct {
	Key
	hash string
}

func (m *memKeys) Create(_ context.Context, name, tenant string, ttl time.Duration) (Created, error) {
	b := make([]byte, 32)
	rand.Read(b)
	token := "isol8_" + hex.EncodeToString(b)
	sum := sha256.Sum256([]byte(token))
	now := time.Now()
	k := &memKey{Key: Key{ID: uuid.NewString(), Name: name, KeyPrefix: token[:10] + "...", TenantID: tenant,
		CreatedAt: now, ExpiresAt: now.Add(ttl)}, hash: hex.EncodeToString(sum[:])}
	m.mu.Lock()
	m.keys = append(m.keys, k)
	m.mu.Unlock()
	return Created{Key: k.Key, Token: token}, nil
}

func (m *memKeys) Verify(_ context.Context, token string) (Key, error) {
	sum := sha256.Sum256([]byte(token))
	h := hex.EncodeToString(sum[:])
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range m.keys {
		if k.hash == h {
			if k.Revoked || k.ExpiresAt.Before(time.Now()) {
				return Key{}, fmt.Errorf("key %s: %w", k.ID, ErrInvalidKey)
			}
			now := time.Now()
			k.LastUsedAt = &now
			return k.Key, nil
		}
	}
	return Key{}, ErrInvalidKey
}

func (m *memKeys) List(_ context.Context, tenant string) ([]Key, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Key
	for _, k := range m.keys {
		if tenant == "" || k.TenantID == tenant {
			out = append(out, k.Key)
		}
	}
	return out, nil
}

func (m *memKeys) Revoke(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range m.keys {
		if k.ID == id {
			k.Revoked = true
			return nil
		}
	}
	return fmt.Errorf("revoke %s: %w", id, ErrNotFound)
}

func (m *memKeys) Close() error { return nil }

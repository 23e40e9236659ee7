package engine

import (
	"context"
	"sync"
)

// ctxMutex is a mutex whose Lock can give up at a context's deadline, so a
// caller queued behind a long (or stuck) holder never waits past its own
// deadline. The zero value is unlocked.
type ctxMutex struct {
	once sync.Once
	ch   chan struct{}
}

func (m *ctxMutex) init() { m.once.Do(func() { m.ch = make(chan struct{}, 1) }) }

// Lock waits without a deadline.
func (m *ctxMutex) Lock() { _ = m.LockCtx(context.Background()) }

// LockCtx waits until the mutex is taken or ctx ends.
func (m *ctxMutex) LockCtx(ctx context.Context) error {
	m.init()
	select {
	case m.ch <- struct{}{}:
		return nil
	default:
	}
	select {
	case m.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *ctxMutex) Unlock() {
	m.init()
	select {
	case <-m.ch:
	default:
		panic("engine: unlock of an unlocked ctxMutex")
	}
}

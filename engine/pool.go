package engine

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/isol8/isol8/api"
)

// Pool strategies.
const (
	// PoolFast reuses a sandbox after the agent reset it and verified every
	// item of its checklist (agent.ResetItems); a sandbox failing any item
	// is destroyed instead.
	PoolFast = api.PoolFast
	// PoolSecure never hands out a used sandbox: each serves one execution
	// and is destroyed in the background while fresh ones are made ahead of
	// demand.
	PoolSecure = api.PoolSecure
)

// pool keeps started sandboxes of one shape, per image, so an execution does not pay for a
// container's creation. Sizes:
//   - clean: how many ready sandboxes to keep (fast: the most kept after
//     reuse; secure: how many are made ahead of demand);
//   - dirty: how many used sandboxes may be resetting at once (fast); past
//     that a released sandbox is destroyed instead.
//
// Zero clean and dirty sizes disable pooling: every execution creates and
// destroys its own sandbox (the CLI's single cold run).
//
// The host owns its pools (one per shape and pool policy) and shares them
// between its views.
type pool struct {
	h        *Host
	s        *shape
	strategy string
	clean    int
	dirty    int

	mu        sync.Mutex
	idle      map[string][]*sandbox // image → ready sandboxes
	creating  map[string]int        // image → creations in flight
	resetting map[string]int        // image → resets in flight
	changed   chan struct{}         // closed and replaced on every change
	closed    bool
	bg        sync.WaitGroup
	bgCtx     context.Context
	bgCancel  context.CancelFunc
}

func newPool(h *Host, s *shape, strategy string, size PoolSize) *pool {
	ctx, cancel := context.WithCancel(context.Background())
	return &pool{
		h: h, s: s, strategy: strategy, clean: size.Clean, dirty: size.Dirty,
		idle: map[string][]*sandbox{}, creating: map[string]int{}, resetting: map[string]int{},
		changed: make(chan struct{}), bgCtx: ctx, bgCancel: cancel,
	}
}

func (p *pool) enabled() bool { return p.clean > 0 || p.dirty > 0 }

// notify wakes everyone waiting for a state change. Called with p.mu held.
func (p *pool) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// acquire returns a started, clean sandbox for image. ensureImage runs
// before a sandbox is made, never on a hit.
func (p *pool) acquire(ctx context.Context, image, runtime string, ensureImage func(context.Context) error) (*sandbox, error) {
	t0 := time.Now()
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, errStopped
		}
		if list := p.idle[image]; len(list) > 0 {
			sb := list[len(list)-1]
			p.idle[image] = list[:len(list)-1]
			p.mu.Unlock()
			p.refill(image, runtime)
			p.h.logAcquire(image, sb.id, true, t0)
			return sb, nil
		}
		// A reset takes milliseconds and a creation a hundred: wait for a
		// sandbox that is being reset (or made ahead of demand).
		if p.resetting[image] > 0 || (p.strategy == PoolSecure && p.creating[image] > 0) {
			ch := p.changed
			p.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		p.mu.Unlock()
		break
	}
	if ensureImage != nil {
		if err := ensureImage(ctx); err != nil {
			return nil, err
		}
	}
	sb, err := p.h.newSandbox(ctx, p.s, image, runtime)
	if err == nil {
		p.refill(image, runtime)
		p.h.logAcquire(image, sb.id, false, t0)
	}
	return sb, err
}

// refill makes sandboxes ahead of demand in the secure strategy, where
// every sandbox is used once. The fast strategy grows on demand and keeps
// what it reuses, so it never churns sandboxes in steady state.
func (p *pool) refill(image, runtime string) {
	if p.strategy != PoolSecure || !p.enabled() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for !p.closed && len(p.idle[image])+p.creating[image] < p.clean {
		p.creating[image]++
		p.bg.Add(1)
		go p.create(image, runtime)
	}
}

func (p *pool) create(image, runtime string) {
	defer p.bg.Done()
	// Not cancelled by drain: a creation cut short can strand a container
	// on the server. drain waits for it and destroys what it made.
	sb, err := p.h.newSandbox(context.WithoutCancel(p.bgCtx), p.s, image, runtime)
	p.mu.Lock()
	p.creating[image]--
	p.notify()
	if err != nil {
		p.mu.Unlock()
		p.h.log.Warn("pool: create sandbox failed", "image", image, "error", err)
		return
	}
	if p.closed || len(p.idle[image]) >= p.clean {
		p.mu.Unlock()
		p.h.destroy(context.Background(), sb)
		return
	}
	p.idle[image] = append(p.idle[image], sb)
	p.notify()
	p.mu.Unlock()
}

// warm fills the pool of image to its clean size (Start's prewarm).
func (p *pool) warm(ctx context.Context, image, runtime string) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	p.mu.Lock()
	need := p.clean - len(p.idle[image]) - p.creating[image]
	p.creating[image] += max(need, 0)
	p.mu.Unlock()
	for i := 0; i < need; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sb, err := p.h.newSandbox(ctx, p.s, image, runtime)
			p.mu.Lock()
			p.creating[image]--
			if err == nil && !p.closed {
				p.idle[image] = append(p.idle[image], sb)
				sb = nil
			}
			p.notify()
			p.mu.Unlock()
			if sb != nil {
				p.h.destroy(ctx, sb)
			}
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// release hands a used sandbox back. Broken sandboxes, the secure strategy
// and a writable root filesystem (which a reset cannot restore) destroy it;
// the fast strategy resets it in the background and keeps it.
func (p *pool) release(sb *sandbox) {
	p.mu.Lock()
	reuse := !sb.broken && !p.closed && p.strategy == PoolFast && p.enabled() &&
		!p.s.writable() && p.resetting[sb.image] < max(p.dirty, 1)
	if reuse {
		p.resetting[sb.image]++
	}
	if !p.enabled() {
		// No pool (the CLI's single run): remove it before returning, so
		// nothing outlives the execution even if the process exits next.
		p.mu.Unlock()
		p.h.destroy(context.Background(), sb)
		return
	}
	p.bg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.bg.Done()
		if !reuse {
			p.h.destroy(context.Background(), sb)
			return
		}
		ctx, cancel := context.WithTimeout(p.bgCtx, 10*time.Second)
		t0 := time.Now()
		_, err := sb.conn.reset(ctx)
		cancel()
		p.h.logStep("sandbox reset", sb.id, t0, err)
		p.mu.Lock()
		p.resetting[sb.image]--
		keep := err == nil && !p.closed && len(p.idle[sb.image]) < max(p.clean, 1)
		if keep {
			p.idle[sb.image] = append(p.idle[sb.image], sb)
		}
		p.notify()
		p.mu.Unlock()
		var check *resetCheckError
		switch {
		case errors.As(err, &check):
			// Expected now and then (a TIME_WAIT socket, say): the sandbox
			// is not verified clean, so it is not reused.
			p.h.log.Debug("pool: reset check failed, destroying sandbox", "sandbox", sb.id, "item", check.item, "detail", check.detail)
		case err != nil && p.bgCtx.Err() == nil: // a reset cut short by Stop is no failure
			p.h.log.Warn("pool: reset failed, destroying sandbox", "sandbox", sb.id, "error", err)
		}
		if !keep {
			p.h.destroy(context.Background(), sb)
		}
	}()
}

// drain stops background work and destroys every pooled sandbox.
func (p *pool) drain(ctx context.Context) {
	p.mu.Lock()
	p.closed = true
	p.notify()
	p.mu.Unlock()
	p.bgCancel()
	p.bg.Wait()
	p.mu.Lock()
	var all []*sandbox
	for img, list := range p.idle {
		all = append(all, list...)
		delete(p.idle, img)
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, sb := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.h.destroy(ctx, sb)
		}()
	}
	wg.Wait()
}

package engine

import (
	"context"
	"sync"
	"time"
)

// startTimeout bounds one attempt to connect (which may start a private
// containerd) and locate the init binary.
const startTimeout = 2 * time.Minute

// startAttempt is one run of start, shared by every caller that arrives
// while it runs.
type startAttempt struct {
	done chan struct{}
	err  error
}

// Start connects the host to the backend, locates isol8-init and prepares
// the host identities of sandboxes. Views call it lazily. The work runs on
// a context of its own: a caller that gives up (ctx ends) gets ctx's error,
// the attempt goes on for the others, and an attempt that failed is retried
// by the next call, so one cancelled caller cannot break the host for good.
func (h *Host) Start(ctx context.Context) error {
	h.startMu.Lock()
	if h.started {
		h.startMu.Unlock()
		return nil
	}
	if h.work.isClosed() {
		h.startMu.Unlock()
		return errStopped
	}
	a := h.starting
	if a == nil || a.failed() {
		a = &startAttempt{done: make(chan struct{})}
		h.starting = a
		go h.runStart(context.WithoutCancel(ctx), a)
	}
	h.startMu.Unlock()
	select {
	case <-a.done:
		return a.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Host) runStart(ctx context.Context, a *startAttempt) {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	err := h.start(ctx)
	h.startMu.Lock()
	a.err = err
	h.started = err == nil
	close(a.done)
	h.startMu.Unlock()
}

// failed reports whether the attempt has ended with an error.
func (a *startAttempt) failed() bool {
	select {
	case <-a.done:
		return a.err != nil
	default:
		return false
	}
}

// waitStart waits for a start attempt in flight, so that Stop closes the
// connection it makes.
func (h *Host) waitStart(ctx context.Context) {
	h.startMu.Lock()
	a := h.starting
	h.startMu.Unlock()
	if a == nil {
		return
	}
	select {
	case <-a.done:
	case <-ctx.Done():
	}
}

// gate counts work in flight (executions, file operations, prewarms, admin
// work) for a host or a view, so that Stop refuses new work and waits for
// the rest. The zero value is not ready: use newGate.
type gate struct {
	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup
	// stopCtx is cancelled when Stop gives up waiting for work in flight.
	stopCtx    context.Context
	stopCancel context.CancelFunc
}

func newGate() *gate {
	ctx, cancel := context.WithCancel(context.Background())
	return &gate{stopCtx: ctx, stopCancel: cancel}
}

// enter registers work in flight and returns a context that Stop cancels
// when it gives up waiting, and the function that ends the work. It fails
// once Stop has begun, so no work starts that Stop would not wait for.
func (g *gate) enter(ctx context.Context) (context.Context, func(), error) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil, nil, errStopped
	}
	g.inflight.Add(1)
	g.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(g.stopCtx, cancel)
	return ctx, func() {
		stop()
		cancel()
		g.inflight.Done()
	}, nil
}

// close refuses new work; it reports false when the gate was closed already.
func (g *gate) close() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.closed = true
	return true
}

func (g *gate) isClosed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// wait waits for the work in flight; when ctx ends first it cancels that
// work and waits for it to unwind (each execution removes or returns its
// sandbox on the way out).
func (g *gate) wait(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		g.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	g.stopCancel()
	<-done
}

// Start connects the engine's host (once for all its views) and loads the
// view's seccomp profile. Executions call it lazily; like Host.Start it may
// be retried after a failure.
func (e *Engine) Start(ctx context.Context) error {
	if e.work.isClosed() {
		return errStopped
	}
	// The profile is read first: a bad custom profile is the caller's
	// mistake and is reported before any connection is made.
	sh, err := e.loadShape()
	if err != nil {
		return err
	}
	if err := e.host.Start(ctx); err != nil {
		return err
	}
	e.startMu.Lock()
	defer e.startMu.Unlock()
	if e.pool == nil {
		e.pool = e.host.poolFor(sh, e.opts.PoolStrategy, *e.opts.PoolSize)
	}
	return nil
}

// enter registers work in flight with the view and its host: stopping
// either refuses new work, waits for this work or cancels it.
func (e *Engine) enter(ctx context.Context) (context.Context, func(), error) {
	ctx, leaveHost, err := e.host.work.enter(ctx)
	if err != nil {
		return nil, nil, err
	}
	ctx, leave, err := e.work.enter(ctx)
	if err != nil {
		leaveHost()
		return nil, nil, err
	}
	return ctx, func() {
		leave()
		leaveHost()
	}, nil
}

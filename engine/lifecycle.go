package engine

import (
	"context"
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

// Start connects to the backend, locates isol8-init and loads the seccomp
// profile. Executions call it lazily. The work runs on a context of its
// own: a caller that gives up (ctx ends) gets ctx's error, the attempt goes
// on for the others, and an attempt that failed is retried by the next
// call, so one cancelled caller cannot break the engine for good.
func (e *Engine) Start(ctx context.Context) error {
	e.startMu.Lock()
	if e.started {
		e.startMu.Unlock()
		return nil
	}
	if e.isStopped() {
		e.startMu.Unlock()
		return errStopped
	}
	a := e.starting
	if a == nil || a.failed() {
		a = &startAttempt{done: make(chan struct{})}
		e.starting = a
		go e.runStart(context.WithoutCancel(ctx), a)
	}
	e.startMu.Unlock()
	select {
	case <-a.done:
		return a.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *Engine) runStart(ctx context.Context, a *startAttempt) {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	err := e.start(ctx)
	e.startMu.Lock()
	a.err = err
	e.started = err == nil
	close(a.done)
	e.startMu.Unlock()
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
func (e *Engine) waitStart(ctx context.Context) {
	e.startMu.Lock()
	a := e.starting
	e.startMu.Unlock()
	if a == nil {
		return
	}
	select {
	case <-a.done:
	case <-ctx.Done():
	}
}

func (e *Engine) isStopped() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stopped
}

// enter registers work in flight and returns a context that Stop cancels
// when it gives up waiting, and the function that ends the work. It fails
// once Stop has begun, so no work starts that Stop would not wait for.
func (e *Engine) enter(ctx context.Context) (context.Context, func(), error) {
	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		return nil, nil, errStopped
	}
	e.inflight.Add(1)
	e.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(e.stopCtx, cancel)
	return ctx, func() {
		stop()
		cancel()
		e.inflight.Done()
	}, nil
}

// waitInflight waits for the work in flight; when ctx ends first it
// cancels that work and waits for it to unwind (each execution removes or
// returns its sandbox on the way out).
func (e *Engine) waitInflight(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		e.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	e.stopCancel()
	<-done
}

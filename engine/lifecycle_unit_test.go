//go:build linux && cgo

package engine

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isol8/isol8/driver"
)

// newUnstartedFakeHost returns a host whose driver comes from newDriver and
// whose sandboxes get no user namespace (the allocator needs root).
func newUnstartedFakeHost(t *testing.T, newDriver DriverFactory) *Host {
	t.Helper()
	h, err := NewHost(HostOptions{NewDriver: newDriver, InitPath: "/isol8-unit-test/isol8-init"})
	if err != nil {
		t.Fatal(err)
	}
	h.identify = func(context.Context, string, *specs.Spec) (*identity, error) { return nil, nil }
	t.Cleanup(func() { _ = h.Stop(context.Background()) })
	return h
}

// A failed start is retried by the next caller; a caller that gives up
// does not end the attempt for the others.
func TestHostStartRetriesAndOutlivesCallers(t *testing.T) {
	d := newFakeDriver(t)
	var calls atomic.Int32
	release := make(chan struct{})
	h := newUnstartedFakeHost(t, func(ctx context.Context, _ *slog.Logger) (driver.Driver, error) {
		if calls.Add(1) == 1 {
			return nil, errors.New("backend down")
		}
		<-release
		return d, nil
	})
	if err := h.Start(t.Context()); err == nil || err.Error() != "backend down" {
		t.Fatalf("first start: %v, want the factory's error", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := h.Start(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("start with a cancelled context: %v", err)
	}
	close(release)
	if err := h.Start(t.Context()); err != nil {
		t.Fatalf("start after the caller gave up: %v", err)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("driver factory called %d times, want 2 (one failure, one shared attempt)", n)
	}
}

// Stop during a start attempt waits for it and closes the connection it
// made; the host then refuses to start.
func TestHostStopDuringStartClosesTheDriver(t *testing.T) {
	d := newFakeDriver(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	h := newUnstartedFakeHost(t, func(context.Context, *slog.Logger) (driver.Driver, error) {
		close(entered)
		<-release
		return d, nil
	})
	started := make(chan error, 1)
	go func() { started <- h.Start(t.Context()) }()
	<-entered
	stopped := make(chan error, 1)
	go func() { stopped <- h.Stop(context.Background()) }()
	for !h.work.isClosed() {
		select {
		case <-stopped:
			t.Fatal("Stop returned during a start attempt")
		case <-time.After(time.Millisecond):
		}
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	<-started
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if !closed {
		t.Fatal("the driver made during Stop was left open")
	}
	e, err := h.NewEngine(Options{})
	if !errors.Is(err, errStopped) || e != nil {
		t.Fatalf("NewEngine after Stop: %v", err)
	}
}

// Failed creations leave nothing behind: the execution reports the
// driver's error, a prewarm reports it, a failed refill is only logged and
// the next acquire makes its own sandbox.
func TestPoolCreateFailures(t *testing.T) {
	d := newFakeDriver(t)
	h := newFakeHost(t, d)
	fast := newFakeView(t, h, PoolFast, PoolSize{Clean: 2, Dirty: 1})
	secure := newFakeView(t, h, PoolSecure, PoolSize{Clean: 2, Dirty: 1})
	d.failNextCreates(1)
	if _, err := fast.Execute(t.Context(), fakeRequest); err == nil || !errors.Is(err, errFakeCreate) {
		t.Fatalf("execute with a failing create: %v", err)
	}
	d.failNextCreates(1)
	if err := fast.Prewarm(t.Context(), "bash"); !errors.Is(err, errFakeCreate) {
		t.Fatalf("prewarm with a failing create: %v", err)
	}
	// Refills ahead of demand that fail leave the secure pool empty; the
	// next acquire makes its own sandbox.
	img := fakeImage(t, secure)
	if err := secure.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	before := d.creates() // the prewarm's one success
	d.failNextCreates(2)
	secure.pool.refill(img, "bash")
	awaitPool(t, secure.pool, "the failed refills", func() bool { return secure.pool.creating[img] == 0 })
	if n := d.creates() - before; n != 0 {
		t.Fatalf("%d sandboxes made by failing creations", n)
	}
	runFake(t, secure)
	if err := h.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	d.checkAllDeletedOnce(t)
}

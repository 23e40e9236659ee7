//go:build linux && cgo

package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/isol8/isol8/agent"
)

// Unit tests of the warm pool and of Stop on a fake driver (fakedriver_test.go):
// the pool, the host's lifecycle and the agent connection are the real ones.

var fakeRequest = Request{Runtime: "bash", Code: "echo hi"}

// runFake executes fakeRequest on e and checks the fake agent's answer.
func runFake(t *testing.T, e *Engine) *Result {
	t.Helper()
	res, err := e.Execute(t.Context(), fakeRequest)
	if err != nil {
		t.Fatalf("execute: %v", err)
	}
	if res.ExitCode != 0 || res.Stdout != "ran in "+res.ContainerID {
		t.Fatalf("execute: exit %d, stdout %q, container %s", res.ExitCode, res.Stdout, res.ContainerID)
	}
	return res
}

// fakeImage is the image fakeRequest runs on.
func fakeImage(t *testing.T, e *Engine) string {
	t.Helper()
	p, err := e.plan(fakeRequest)
	if err != nil {
		t.Fatal(err)
	}
	return p.image
}

func TestPoolFastReusesAfterPassingReset(t *testing.T) {
	d := newFakeDriver(t)
	e := newFakeView(t, newFakeHost(t, d), PoolFast, PoolSize{Clean: 1, Dirty: 1})
	first := runFake(t, e)
	for i := range 3 {
		if res := runFake(t, e); res.ContainerID != first.ContainerID {
			t.Fatalf("run %d: sandbox %s, want the reset %s", i+2, res.ContainerID, first.ContainerID)
		}
	}
	d.await(t, "four resets", func() bool { return d.resets == 4 })
	img := fakeImage(t, e)
	awaitPool(t, e.pool, "the sandbox back in the pool", func() bool { return len(e.pool.idle[img]) == 1 })
	if n, del := d.creates(), d.deleted(); n != 1 || del != 0 {
		t.Fatalf("%d sandboxes created and %d deleted, want 1 and 0", n, del)
	}
}

// A sandbox whose reset fails any checklist item is destroyed, and the next
// execution gets a new one.
func TestPoolFastDestroysAfterFailedResetItem(t *testing.T) {
	for _, item := range agent.ResetItems {
		t.Run(item, func(t *testing.T) {
			d := newFakeDriver(t)
			e := newFakeView(t, newFakeHost(t, d), PoolFast, PoolSize{Clean: 1, Dirty: 1})
			first := runFake(t, e)
			d.await(t, "the first reset", func() bool { return d.resets == 1 })
			d.failNextResets(1, item)
			if res := runFake(t, e); res.ContainerID != first.ContainerID {
				t.Fatalf("run 2: sandbox %s, want the reset %s", res.ContainerID, first.ContainerID)
			}
			third := runFake(t, e)
			if third.ContainerID == first.ContainerID {
				t.Fatalf("run 3 reused %s after its reset failed %q", first.ContainerID, item)
			}
			d.await(t, "the failed sandbox deleted", func() bool { return d.sandboxes[first.ContainerID].deletes > 0 })
			if n, del := d.creates(), d.deletes(first.ContainerID); n != 2 || del != 1 {
				t.Fatalf("%d sandboxes created, the failed one deleted %d times; want 2 and 1", n, del)
			}
		})
	}
}

func TestPoolSecureNeverReusesAndRefillsToClean(t *testing.T) {
	d := newFakeDriver(t)
	e := newFakeView(t, newFakeHost(t, d), PoolSecure, PoolSize{Clean: 2, Dirty: 1})
	img := fakeImage(t, e)
	const runs = 5
	used := map[string]bool{}
	for i := range runs {
		res := runFake(t, e)
		if used[res.ContainerID] {
			t.Fatalf("run %d reused sandbox %s", i+1, res.ContainerID)
		}
		used[res.ContainerID] = true
		if i == 0 {
			// Ahead of demand: the pool fills to Clean after the first miss.
			awaitPool(t, e.pool, "two ready sandboxes", func() bool {
				return len(e.pool.idle[img]) == 2 && e.pool.creating[img] == 0
			})
		}
	}
	awaitPool(t, e.pool, "two ready sandboxes", func() bool {
		return len(e.pool.idle[img]) == 2 && e.pool.creating[img] == 0
	})
	d.await(t, "every used sandbox deleted", func() bool {
		n := 0
		for id := range used {
			n += d.sandboxes[id].deletes
		}
		return n == runs
	})
	// One creation on the first miss, Clean ahead of demand, one refill per
	// later run: never more than Clean ready at once.
	if n := d.creates(); n != runs+2 {
		t.Fatalf("%d sandboxes created for %d runs, want %d", n, runs, runs+2)
	}
	for id := range used {
		if n := d.deletes(id); n != 1 {
			t.Fatalf("used sandbox %s deleted %d times", id, n)
		}
	}
	e.pool.mu.Lock()
	for _, sb := range e.pool.idle[img] {
		if used[sb.id] || d.deletes(sb.id) != 0 {
			t.Errorf("ready sandbox %s: used %t, deleted %d times", sb.id, used[sb.id], d.deletes(sb.id))
		}
	}
	e.pool.mu.Unlock()
	if n := d.resetCount(); n != 0 {
		t.Fatalf("secure pool reset %d sandboxes", n)
	}
}

// doneProbe reports the first time anyone asks for its Done channel: an
// acquire does so exactly when it starts to wait.
type doneProbe struct {
	context.Context
	once   sync.Once
	called chan struct{}
}

func newDoneProbe(ctx context.Context) *doneProbe {
	return &doneProbe{Context: ctx, called: make(chan struct{})}
}

func (c *doneProbe) Done() <-chan struct{} {
	c.once.Do(func() { close(c.called) })
	return c.Context.Done()
}

// An acquire that finds the pool's sandbox resetting waits for it rather
// than making another.
func TestPoolAcquireWaitsForResetting(t *testing.T) {
	d := newFakeDriver(t)
	e := newFakeView(t, newFakeHost(t, d), PoolFast, PoolSize{Clean: 1, Dirty: 1})
	hold := make(chan struct{})
	d.mu.Lock()
	d.holdResets = hold
	d.mu.Unlock()
	first := runFake(t, e) // released: its reset is held
	img := fakeImage(t, e)
	probe := newDoneProbe(t.Context())
	type acquired struct {
		sb  *sandbox
		err error
	}
	got := make(chan acquired, 1)
	go func() {
		sb, err := e.pool.acquire(probe, img, "bash", nil)
		got <- acquired{sb, err}
	}()
	select {
	case <-probe.called:
	case <-time.After(20 * time.Second):
		t.Fatal("acquire neither waited nor made a sandbox")
	}
	if n := d.creates(); n != 1 {
		t.Fatalf("acquire made a sandbox (%d in all) while one was resetting", n)
	}
	close(hold)
	r := <-got
	if r.err != nil {
		t.Fatalf("acquire: %v", r.err)
	}
	defer e.pool.release(r.sb)
	if r.sb.id != first.ContainerID || d.creates() != 1 {
		t.Fatalf("acquire got %s (%d created), want the reset %s", r.sb.id, d.creates(), first.ContainerID)
	}
}

// A waiting acquire gives up with its context and makes nothing.
func TestPoolAcquireWaitEndsWithContext(t *testing.T) {
	d := newFakeDriver(t)
	e := newFakeView(t, newFakeHost(t, d), PoolFast, PoolSize{Clean: 1, Dirty: 1})
	hold := make(chan struct{})
	defer close(hold)
	d.mu.Lock()
	d.holdResets = hold
	d.mu.Unlock()
	runFake(t, e)
	ctx, cancel := context.WithCancel(t.Context())
	probe := newDoneProbe(ctx)
	go func() {
		<-probe.called
		cancel()
	}()
	sb, err := e.pool.acquire(probe, fakeImage(t, e), "bash", nil)
	if !errors.Is(err, context.Canceled) || sb != nil {
		t.Fatalf("acquire = %v, %v; want context.Canceled", sb, err)
	}
	if n := d.creates(); n != 1 {
		t.Fatalf("%d sandboxes created, want 1", n)
	}
}

// Zero clean and dirty sizes: every execution makes its sandbox and has
// removed it by the time Execute returns.
func TestPoolZeroSizeCreatesAndDestroysPerExecution(t *testing.T) {
	for _, strategy := range []string{PoolFast, PoolSecure} {
		t.Run(strategy, func(t *testing.T) {
			d := newFakeDriver(t)
			e := newFakeView(t, newFakeHost(t, d), strategy, PoolSize{})
			seen := map[string]bool{}
			for i := range 3 {
				res := runFake(t, e)
				if seen[res.ContainerID] {
					t.Fatalf("run %d reused %s", i+1, res.ContainerID)
				}
				seen[res.ContainerID] = true
				if n, del := d.creates(), d.deletes(res.ContainerID); n != i+1 || del != 1 {
					t.Fatalf("after run %d: %d created, its sandbox deleted %d times; want %d and 1", i+1, n, del, i+1)
				}
			}
			if n := d.resetCount(); n != 0 {
				t.Fatalf("%d resets without a pool", n)
			}
		})
	}
}

// Stop while executions, prewarms and a persistent view run on every kind
// of pool: it returns, every sandbox made is deleted exactly once (nothing
// after the driver closed), and later work fails with the stopped error.
func TestHostStopUnderLoad(t *testing.T) {
	for round := range 3 {
		t.Run(fmt.Sprint("round ", round), stopUnderLoad)
	}
}

func stopUnderLoad(t *testing.T) {
	d := newFakeDriver(t)
	h := newFakeHost(t, d)
	persistent, err := h.NewEngine(Options{Mode: ModePersistent})
	if err != nil {
		t.Fatal(err)
	}
	views := []*Engine{
		newFakeView(t, h, PoolFast, PoolSize{Clean: 2, Dirty: 2}),
		newFakeView(t, h, PoolFast, PoolSize{Clean: 1}),
		newFakeView(t, h, PoolSecure, PoolSize{Clean: 2, Dirty: 1}),
		newFakeView(t, h, PoolFast, PoolSize{}),
		persistent,
	}
	var wg sync.WaitGroup
	var ran atomic.Int64
	for i := range 12 {
		e := views[i%len(views)]
		prewarm := i%len(views) < 3 && i >= len(views)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, err := e.Execute(t.Context(), fakeRequest)
				if err == nil && prewarm {
					err = e.Prewarm(t.Context(), "bash")
				}
				if err != nil {
					if !errors.Is(err, errStopped) {
						t.Errorf("worker %d: %v, want the stopped error", i, err)
					}
					return
				}
				ran.Add(1)
			}
		}()
	}
	d.await(t, "work under way", func() bool { return len(d.order) >= 20 && d.resets >= 5 })
	stopped := make(chan error, 1)
	go func() { stopped <- h.Stop(t.Context()) }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("Stop did not return; driver: %s", d.summary())
	}
	wg.Wait()
	d.checkAllDeletedOnce(t)
	h.mu.Lock()
	live := len(h.live)
	h.mu.Unlock()
	if live != 0 {
		t.Errorf("%d sandboxes still tracked as live after Stop", live)
	}
	for i, e := range views {
		if _, err := e.Execute(t.Context(), fakeRequest); !errors.Is(err, errStopped) {
			t.Errorf("view %d after Stop: %v, want the stopped error", i, err)
		}
	}
	if _, err := h.NewEngine(Options{}); !errors.Is(err, errStopped) {
		t.Errorf("NewEngine after Stop: %v, want the stopped error", err)
	}
	t.Logf("%d executions, %d sandboxes before Stop", ran.Load(), d.creates())
}

// A background creation (secure refill) still in flight when Stop begins
// holds Stop up, and what it makes is deleted.
func TestHostStopDeletesLateRefill(t *testing.T) {
	d := newFakeDriver(t)
	h := newFakeHost(t, d)
	e := newFakeView(t, h, PoolSecure, PoolSize{Clean: 1, Dirty: 1})
	if err := e.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	d.mu.Lock()
	d.holdCreates = hold
	d.mu.Unlock()
	e.pool.refill(fakeImage(t, e), "bash")
	d.await(t, "the refill's creation", func() bool { return d.creating == 1 })
	stopped := make(chan error, 1)
	go func() { stopped <- h.Stop(context.Background()) }()
	awaitPool(t, e.pool, "Stop to close the pool", func() bool { return e.pool.closed })
	select {
	case <-stopped:
		t.Fatal("Stop returned while a creation was in flight")
	default:
	}
	close(hold)
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if n := d.creates(); n != 1 {
		t.Fatalf("%d sandboxes created, want the refill's one", n)
	}
	d.checkAllDeletedOnce(t)
}

// An execution whose sandbox is still being created when Stop begins
// finishes, and its sandbox is deleted.
func TestHostStopWaitsForCreationInFlight(t *testing.T) {
	d := newFakeDriver(t)
	h := newFakeHost(t, d)
	e := newFakeView(t, h, PoolFast, PoolSize{Clean: 1, Dirty: 1})
	hold := make(chan struct{})
	d.mu.Lock()
	d.holdCreates = hold
	d.mu.Unlock()
	type executed struct {
		res *Result
		err error
	}
	done := make(chan executed, 1)
	go func() {
		res, err := e.Execute(t.Context(), fakeRequest)
		done <- executed{res, err}
	}()
	d.await(t, "the execution's creation", func() bool { return d.creating == 1 })
	stopped := make(chan error, 1)
	go func() { stopped <- h.Stop(context.Background()) }()
	for !e.work.isClosed() { // Stop has reached the view and waits for its work
		select {
		case <-stopped:
			t.Fatal("Stop returned while an execution was creating its sandbox")
		case <-time.After(time.Millisecond):
		}
	}
	close(hold)
	r := <-done
	if r.err != nil {
		t.Fatalf("execution in flight at Stop: %v", r.err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if n := d.creates(); n != 1 || d.deletes(r.res.ContainerID) != 1 {
		t.Fatalf("%d created, %s deleted %d times; want 1 and once", n, r.res.ContainerID, d.deletes(r.res.ContainerID))
	}
	d.checkAllDeletedOnce(t)
}

// Prewarm fills a fast pool to Clean; the executions after it make nothing.
func TestPoolPrewarmFillsToClean(t *testing.T) {
	d := newFakeDriver(t)
	e := newFakeView(t, newFakeHost(t, d), PoolFast, PoolSize{Clean: 3, Dirty: 3})
	for range 2 { // the second finds the pool full
		if err := e.Prewarm(t.Context(), "bash"); err != nil {
			t.Fatalf("prewarm: %v", err)
		}
	}
	if n := d.creates(); n != 3 {
		t.Fatalf("prewarm made %d sandboxes, want 3", n)
	}
	for range 3 {
		runFake(t, e)
	}
	if n := d.creates(); n != 3 {
		t.Fatalf("%d sandboxes after prewarm and three runs, want 3", n)
	}
}

// A sandbox whose agent died mid-execution is broken: destroyed, never
// handed out again.
func TestPoolBrokenSandboxIsDestroyed(t *testing.T) {
	d := newFakeDriver(t)
	e := newFakeView(t, newFakeHost(t, d), PoolFast, PoolSize{Clean: 1, Dirty: 1})
	first := runFake(t, e)
	d.mu.Lock()
	d.breakExecs = 1
	d.mu.Unlock()
	if _, err := e.Execute(t.Context(), fakeRequest); !errors.Is(err, errAgentGone) {
		t.Fatalf("execute on a dying agent: %v, want errAgentGone", err)
	}
	d.await(t, "the broken sandbox deleted", func() bool { return d.sandboxes[first.ContainerID].deletes == 1 })
	if res := runFake(t, e); res.ContainerID == first.ContainerID {
		t.Fatalf("broken sandbox %s handed out again", first.ContainerID)
	}
	d.mu.Lock()
	asks := d.sandboxes[first.ContainerID].resetAsks
	d.mu.Unlock()
	if asks != 1 {
		t.Fatalf("broken sandbox asked to reset %d times, want only after the first run", asks)
	}
}

// A writable root filesystem cannot be reset: such sandboxes serve once.
func TestPoolWritableRootNeverReused(t *testing.T) {
	d := newFakeDriver(t)
	writable := false
	e, err := newFakeHost(t, d).NewEngine(Options{PoolStrategy: PoolFast, PoolSize: &PoolSize{Clean: 1, Dirty: 1}, ReadonlyRootFs: &writable})
	if err != nil {
		t.Fatal(err)
	}
	first := runFake(t, e)
	if second := runFake(t, e); second.ContainerID == first.ContainerID {
		t.Fatalf("writable sandbox %s reused", first.ContainerID)
	}
	d.await(t, "the first sandbox deleted", func() bool { return d.sandboxes[first.ContainerID].deletes == 1 })
	if n := d.resetCount(); n != 0 {
		t.Fatalf("%d resets of writable sandboxes", n)
	}
}

// Past Dirty resets in flight a released sandbox is destroyed, and past
// Clean ready sandboxes a reset one is.
func TestPoolFastDirtyAndCleanBounds(t *testing.T) {
	t.Run("dirty", func(t *testing.T) {
		d := newFakeDriver(t)
		e := newFakeView(t, newFakeHost(t, d), PoolFast, PoolSize{Clean: 2, Dirty: 1})
		img := fakeImage(t, e)
		if err := e.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		hold := make(chan struct{})
		d.mu.Lock()
		d.holdResets = hold
		d.mu.Unlock()
		a := mustAcquire(t, e.pool, img)
		b := mustAcquire(t, e.pool, img)
		e.pool.release(a) // resetting: the one allowed
		e.pool.release(b) // over Dirty: destroyed
		d.await(t, "the second sandbox deleted", func() bool { return d.sandboxes[b.id].deletes == 1 })
		d.mu.Lock()
		asks := d.sandboxes[b.id].resetAsks
		d.mu.Unlock()
		if asks != 0 {
			t.Fatalf("the sandbox over Dirty was sent %d resets, want none", asks)
		}
		close(hold)
		awaitPool(t, e.pool, "the reset sandbox ready", func() bool { return len(e.pool.idle[img]) == 1 })
		if d.deletes(a.id) != 0 {
			t.Fatalf("the sandbox within Dirty was deleted")
		}
	})
	t.Run("clean", func(t *testing.T) {
		d := newFakeDriver(t)
		e := newFakeView(t, newFakeHost(t, d), PoolFast, PoolSize{Clean: 1, Dirty: 2})
		img := fakeImage(t, e)
		if err := e.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		a := mustAcquire(t, e.pool, img)
		b := mustAcquire(t, e.pool, img)
		e.pool.release(a)
		e.pool.release(b)
		d.await(t, "both reset, one deleted", func() bool {
			return d.resets == 2 && d.sandboxes[a.id].deletes+d.sandboxes[b.id].deletes == 1
		})
		awaitPool(t, e.pool, "one sandbox ready", func() bool { return len(e.pool.idle[img]) == 1 })
	})
}

func mustAcquire(t *testing.T, p *pool, img string) *sandbox {
	t.Helper()
	sb, err := p.acquire(t.Context(), img, "bash", nil)
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	return sb
}

// Stop cuts a reset in flight short and removes its sandbox.
func TestHostStopCutsResetShort(t *testing.T) {
	d := newFakeDriver(t)
	h := newFakeHost(t, d)
	e := newFakeView(t, h, PoolFast, PoolSize{Clean: 1, Dirty: 1})
	d.mu.Lock()
	d.holdResets = make(chan struct{}) // never released
	d.mu.Unlock()
	first := runFake(t, e)
	stopped := make(chan error, 1)
	go func() { stopped <- h.Stop(context.Background()) }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("Stop waited for a held reset; driver: %s", d.summary())
	}
	if n := d.deletes(first.ContainerID); n != 1 {
		t.Fatalf("sandbox deleted %d times, want once", n)
	}
	d.checkAllDeletedOnce(t)
}

// When Stop's context ends before the work in flight, the work is
// cancelled (the program killed) and unwinds, and its sandbox is removed.
func TestHostStopCancelsStuckExecution(t *testing.T) {
	d := newFakeDriver(t)
	h := newFakeHost(t, d)
	e := newFakeView(t, h, PoolFast, PoolSize{Clean: 1, Dirty: 1})
	d.mu.Lock()
	d.stickyExecs = true
	d.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		_, err := e.Execute(t.Context(), fakeRequest)
		done <- err
	}()
	d.await(t, "the execution running", func() bool { return d.execs == 1 })
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- h.Stop(ctx) }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("Stop did not cancel the stuck execution; driver: %s", d.summary())
	}
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("stuck execution: %v, want context.Canceled", err)
	}
	d.checkAllDeletedOnce(t)
}

// Cancelling a stream kills the program, closes the event channel and
// hands the sandbox back to be reset, not leaked.
func TestStreamCancelReturnsSandbox(t *testing.T) {
	d := newFakeDriver(t)
	h := newFakeHost(t, d)
	e := newFakeView(t, h, PoolFast, PoolSize{Clean: 1, Dirty: 1})
	d.mu.Lock()
	d.stickyExecs = true
	d.mu.Unlock()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	events, err := e.ExecuteStream(ctx, fakeRequest)
	if err != nil {
		t.Fatal(err)
	}
	d.await(t, "the program running", func() bool { return d.execs == 1 })
	cancel()
	// A cancelled consumer is owed no more events, only the close.
	timeout := time.After(20 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-events:
		case <-timeout:
			t.Fatal("event channel not closed after cancel")
		}
	}
	img := fakeImage(t, e)
	awaitPool(t, e.pool, "the sandbox reset and ready", func() bool { return len(e.pool.idle[img]) == 1 })
	if n := d.creates(); n != 1 {
		t.Fatalf("%d sandboxes, want 1", n)
	}
	if err := h.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	d.checkAllDeletedOnce(t)
}

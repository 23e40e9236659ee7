package engine

import (
	"context"
	"errors"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/isol8/isol8/driver"
	ctrd "github.com/isol8/isol8/driver/containerd"
	"github.com/isol8/isol8/internal/testenv"
)

// newUnstartedEngine is newTestEngine without Start.
func newUnstartedEngine(t *testing.T, opts Options) *Engine {
	t.Helper()
	opts.InitPath = testenv.InitBinary(t)
	opts.Containerd.Address = testenv.MustHaveContainerd(t)
	opts.NewDriver = containerdDriver(opts.Containerd.Address)
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// ownContainers lists the containers this test process created.
func ownContainers(t *testing.T, addr string) []string {
	t.Helper()
	drv, err := ctrd.New(t.Context(), ctrd.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	ids, err := drv.List(t.Context(), map[string]string{driver.LabelManaged: "true", driver.LabelPID: strconv.Itoa(os.Getpid())})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// A first caller that gives up must not break the engine for good. Before,
// Start cached the first caller's context.Canceled in a sync.Once and every
// later execution failed with it.
func TestStartRetriesAfterCancelledCaller(t *testing.T) {
	e := newUnstartedEngine(t, Options{PoolSize: noPool})
	defer e.Stop(context.Background())
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	if err := e.Start(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with a cancelled context = %v, want context.Canceled", err)
	}
	if err := e.Start(t.Context()); err != nil {
		t.Fatalf("Start after a cancelled caller: %v", err)
	}
	mustHaveImage(t, e, "bash")
	if res := run(t, e, Request{Runtime: "bash", Code: "echo ok"}); res.Stdout != "ok" {
		t.Fatalf("stdout = %q", res.Stdout)
	}
}

// Stop refuses new work, waits for executions in flight (a cold creation
// included) and leaves nothing behind. Before, a creation that finished
// after Stop had listed the live sandboxes was never destroyed.
func TestStopWaitsForWorkInFlight(t *testing.T) {
	for i, delay := range []time.Duration{0, 5 * time.Millisecond, 20 * time.Millisecond, 60 * time.Millisecond} {
		e := newUnstartedEngine(t, Options{PoolSize: noPool})
		if err := e.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		mustHaveImage(t, e, "bash")
		type outcome struct {
			res *Result
			err error
		}
		done := make(chan outcome, 1)
		go func() {
			res, err := e.Execute(context.Background(), Request{Runtime: "bash", Code: "sleep 0.3; echo finished"})
			done <- outcome{res, err}
		}()
		time.Sleep(delay)
		if err := e.Stop(t.Context()); err != nil {
			t.Fatalf("round %d: Stop: %v", i, err)
		}
		select {
		case o := <-done:
			if o.err == nil && o.res.Stdout != "finished" {
				t.Errorf("round %d: an execution Stop waited for = %+v", i, o.res)
			}
			if o.err != nil && !errors.Is(o.err, errStopped) {
				t.Errorf("round %d: execution error = %v, want a result or errStopped", i, o.err)
			}
		default:
			t.Fatalf("round %d: Stop returned while an execution was in flight", i)
		}
		if _, err := e.Execute(t.Context(), Request{Runtime: "bash", Code: "true"}); !errors.Is(err, errStopped) {
			t.Errorf("round %d: Execute after Stop = %v, want errStopped", i, err)
		}
		if left := ownContainers(t, e.opts.Containerd.Address); len(left) > 0 {
			t.Fatalf("round %d: containers left after Stop: %v", i, left)
		}
	}
}

// When Stop's context ends first, work in flight is cancelled, unwinds and
// leaves nothing behind.
func TestStopCancelsWorkPastItsDeadline(t *testing.T) {
	e := newUnstartedEngine(t, Options{PoolSize: noPool})
	if err := e.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	mustHaveImage(t, e, "bash")
	events, err := e.ExecuteStream(context.Background(), Request{Runtime: "bash", Code: "echo started; sleep 60"})
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-events; ev.Data != "started\n" {
		t.Fatalf("first event = %+v", ev)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	begin := time.Now()
	if err := e.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took > 15*time.Second {
		t.Errorf("Stop took %v with a 200 ms deadline and a 60 s program", took)
	}
	for range events { // the stream must end
	}
	if left := ownContainers(t, e.opts.Containerd.Address); len(left) > 0 {
		t.Fatalf("containers left after Stop: %v", left)
	}
}

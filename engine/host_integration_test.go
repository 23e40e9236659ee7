package engine

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/isol8/isol8/internal/testenv"
)

// newTestHost returns a started host on the test containerd, stopped when
// the test ends.
func newTestHost(t *testing.T, o HostOptions) *Host {
	t.Helper()
	addr := testenv.MustHaveContainerd(t)
	o.InitPath = testenv.InitBinary(t)
	o.Containerd.Address = addr
	o.NewDriver = containerdDriver(addr)
	h, err := NewHost(o)
	if err != nil {
		t.Fatalf("NewHost: %v", err)
	}
	if err := h.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Stop(context.Background()); err != nil {
			t.Errorf("host Stop: %v", err)
		}
	})
	return h
}

func hostView(t *testing.T, h *Host, o Options) *Engine {
	t.Helper()
	e, err := h.NewEngine(o)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	return e
}

// span runs a program that prints the host clock (ns) when it starts and
// when it ends, a second later.
func span(t *testing.T, e *Engine) (start, end int64) {
	t.Helper()
	res := run(t, e, Request{Runtime: "bash", Code: "date +%s%N; sleep 1; date +%s%N"})
	f := strings.Fields(res.Stdout)
	if res.ExitCode != 0 || len(f) != 2 {
		t.Fatalf("span: exit %d stdout %q stderr %q", res.ExitCode, res.Stdout, res.Stderr)
	}
	start, _ = strconv.ParseInt(f[0], 10, 64)
	end, _ = strconv.ParseInt(f[1], 10, 64)
	return start, end
}

// MaxConcurrent is the host's, over all its sessions: two sessions of a
// host with MaxConcurrent 1 never run at once. (With one semaphore per
// engine, as before the host existed, the two programs overlapped.)
func TestHostGlobalConcurrency(t *testing.T) {
	h := newTestHost(t, HostOptions{MaxConcurrent: 1})
	a := hostView(t, h, Options{})
	b := hostView(t, h, Options{MemoryLimit: "256m"})
	mustHaveImage(t, a, "bash")
	var wg sync.WaitGroup
	var spans [2][2]int64
	for i, e := range []*Engine{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			spans[i][0], spans[i][1] = span(t, e)
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	x, y := spans[0], spans[1]
	if x[0] < y[1] && y[0] < x[1] {
		t.Fatalf("the sessions ran at once: [%d, %d] and [%d, %d]", x[0], x[1], y[0], y[1])
	}
}

// Sessions of one shape share the host's warm pool: with the fast strategy
// the second session's execution gets the sandbox the first released,
// verified clean by the reset checklist (no process, file, environment or
// secret of the first). A session with another memory limit never gets it.
func TestHostSharesPoolByShape(t *testing.T) {
	h := newTestHost(t, HostOptions{})
	pool := Options{PoolStrategy: PoolFast, PoolSize: &PoolSize{Clean: 1, Dirty: 1}}
	first := pool
	first.Secrets = map[string]string{"FIRST_TOKEN": "first-secret-value"}
	second := pool
	second.TimeoutMs = 20000
	other := pool
	other.MemoryLimit = "256m"
	s1, s2, s3 := hostView(t, h, first), hostView(t, h, second), hostView(t, h, other)
	mustHaveImage(t, s1, "bash")

	r1 := run(t, s1, Request{Runtime: "bash", Code: `
setsid nohup sleep 9999 >/dev/null 2>&1 &
echo data > /sandbox/first.txt
echo tmp > /tmp/first_tmp
echo started`})
	if r1.Stdout != "started" {
		t.Fatalf("session 1: %q %q", r1.Stdout, r1.Stderr)
	}
	r2 := run(t, s2, Request{Runtime: "bash", Code: `
ps -eo user=,comm= | grep -v '^root' | grep -Ev ' (ps|grep|bash)$' || true
ls -A /sandbox /tmp
echo "TOKEN=${FIRST_TOKEN:-not_set}"`})
	if r2.ContainerID != r1.ContainerID {
		t.Fatalf("session 2 (same shape) did not reuse session 1's sandbox: %s then %s", r1.ContainerID, r2.ContainerID)
	}
	for _, bad := range []string{"sleep", "first.txt", "first_tmp", "first-secret-value"} {
		if strings.Contains(r2.Stdout, bad) {
			t.Fatalf("session 2 sees %q of session 1:\n%s", bad, r2.Stdout)
		}
	}
	if !strings.Contains(r2.Stdout, "TOKEN=not_set") {
		t.Fatalf("session 2 output %q", r2.Stdout)
	}
	r3 := run(t, s3, Request{Runtime: "bash", Code: "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"})
	if r3.ContainerID == r1.ContainerID {
		t.Fatalf("session 3 (256m) got the 512m sandbox %s", r1.ContainerID)
	}
	if r3.Stdout != strconv.Itoa(256<<20) {
		t.Fatalf("session 3's memory limit = %q, want %d", r3.Stdout, 256<<20)
	}
	if n := len(h.pools); n != 2 {
		t.Fatalf("host pools = %d, want 2 (one per shape)", n)
	}
}

// Stopping one session ends its work and its persistent sandbox; another
// session of the host, and its execution in flight, go on.
func TestHostStopOneSession(t *testing.T) {
	h := newTestHost(t, HostOptions{})
	p := hostView(t, h, Options{Mode: ModePersistent})
	other := hostView(t, h, Options{})
	mustHaveImage(t, p, "bash")
	res := run(t, p, Request{Runtime: "bash", Code: "echo hi > /sandbox/f; echo ok"})
	persistentID := res.ContainerID

	// A long execution of the stopping session is cancelled by Stop's
	// deadline; the other session's execution is not.
	started := make(chan struct{})
	longErr := make(chan error, 1)
	go func() {
		events, err := p.ExecuteStream(t.Context(), Request{Runtime: "bash", Code: "echo up; sleep 60"})
		if err != nil {
			longErr <- err
			return
		}
		var once sync.Once
		var last Event
		for ev := range events {
			if ev.Type == EventStdout {
				once.Do(func() { close(started) })
			}
			last = ev
		}
		longErr <- errors.New(last.Type + " " + last.Data)
	}()
	otherRes := make(chan *Result, 1)
	go func() {
		r, err := other.Execute(t.Context(), Request{Runtime: "bash", Code: "sleep 2; echo still-here"})
		if err != nil {
			t.Errorf("other session: %v", err)
		}
		otherRes <- r
	}()
	select {
	case <-started:
	case err := <-longErr:
		t.Fatalf("the long execution ended early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the long execution did not start")
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	t0 := time.Now()
	if err := p.Stop(ctx); err != nil {
		t.Fatalf("session Stop: %v", err)
	}
	if took := time.Since(t0); took > 20*time.Second {
		t.Fatalf("session Stop took %s", took)
	}
	select {
	case <-longErr:
	case <-time.After(20 * time.Second):
		t.Fatal("the stopped session's execution did not end")
	}
	assertNothingLeft(t, p, persistentID)
	if _, err := p.Execute(t.Context(), Request{Runtime: "bash", Code: "echo"}); !errdefs.IsUnavailable(err) {
		t.Fatalf("Execute on a stopped session: err = %v, want unavailable", err)
	}
	if r := <-otherRes; r == nil || r.Stdout != "still-here" {
		t.Fatalf("other session's execution in flight: %+v", r)
	}
	if r := run(t, other, Request{Runtime: "bash", Code: "echo again"}); r.Stdout != "again" {
		t.Fatalf("other session after the stop: %q", r.Stdout)
	}
}

// Stopping the host stops every session and removes everything: pooled
// sandboxes of every shape and persistent sandboxes.
func TestHostStopLeavesNothing(t *testing.T) {
	addr := testenv.MustHaveContainerd(t)
	h := newTestHost(t, HostOptions{})
	a := hostView(t, h, Options{PoolSize: &PoolSize{Clean: 2, Dirty: 1}})
	b := hostView(t, h, Options{Mode: ModePersistent})
	c := hostView(t, h, Options{PoolStrategy: PoolSecure, PidsLimit: 32})
	mustHaveImage(t, a, "bash")
	var ids []string
	for _, e := range []*Engine{a, b, c} {
		ids = append(ids, run(t, e, Request{Runtime: "bash", Code: "echo ok"}).ContainerID)
	}
	if err := c.Prewarm(t.Context(), "bash"); err != nil {
		t.Fatal(err)
	}
	ids = append(ids, liveIDs(a)...)
	if err := h.Stop(t.Context()); err != nil {
		t.Fatalf("host Stop: %v", err)
	}
	if left := ownContainers(t, addr); len(left) > 0 {
		t.Fatalf("containers left after the host stopped: %v", left)
	}
	assertNothingLeft(t, a, ids...)
	for _, e := range []*Engine{a, b, c} {
		if _, err := e.Execute(t.Context(), Request{Runtime: "bash", Code: "echo"}); !errdefs.IsUnavailable(err) {
			t.Fatalf("Execute after the host stopped: err = %v, want unavailable", err)
		}
	}
	if _, err := h.NewEngine(Options{}); !errdefs.IsUnavailable(err) {
		t.Fatalf("NewEngine on a stopped host: err = %v, want unavailable", err)
	}
}

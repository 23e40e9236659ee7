//go:build linux && cgo

// The fake stands in for containerd only: the engine's pool, lifecycle and
// agent connection run unchanged on it. Linux with cgo because every
// sandbox waits for its seccomp profile's libseccomp validation.

package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isol8/isol8/agent"
	"github.com/isol8/isol8/driver"
)

// fakeDriver is a driver.Driver whose sandboxes run a fake agent goroutine
// speaking the real protocol over pipes. It records every creation and
// deletion so tests can prove nothing leaks and nothing is removed twice.
type fakeDriver struct {
	t *testing.T

	mu        sync.Mutex
	sandboxes map[string]*fakeSandbox
	order     []string      // created sandboxes, in creation order
	changed   chan struct{} // closed and replaced on every recorded change
	closed    bool
	late      []string // operations after Close (must stay empty)
	agents    int      // fake agents still running
	resets    int      // resets answered
	execs     int      // execs received
	// Test controls, changed under mu.
	failResets  int           // the next n resets report failItem as failed
	failItem    string        // the checklist item those resets fail
	holdResets  chan struct{} // non-nil: a reset waits until it is closed
	holdCreates chan struct{} // non-nil: Create waits until it is closed
	breakExecs  int           // the next n execs kill the agent (its stdout closes)
	failCreates int           // the next n Create calls fail with errFakeCreate
	stickyExecs bool          // execs run until the engine sends a KILL signal
	creating    int           // Create calls in progress
}

func newFakeDriver(t *testing.T) *fakeDriver {
	return &fakeDriver{t: t, sandboxes: map[string]*fakeSandbox{}, changed: make(chan struct{})}
}

// newFakeHost returns a started host on d whose sandboxes get no user
// namespace (the allocator needs root). The test's cleanup stops it.
func newFakeHost(t *testing.T, d *fakeDriver) *Host {
	t.Helper()
	h, err := NewHost(HostOptions{
		NewDriver: func(context.Context, *slog.Logger) (driver.Driver, error) { return d, nil },
		InitPath:  "/isol8-unit-test/isol8-init", // only written into the spec
	})
	if err != nil {
		t.Fatal(err)
	}
	h.identify = func(context.Context, string, *specs.Spec) (*identity, error) { return nil, nil }
	t.Cleanup(func() { _ = h.Stop(context.Background()) })
	if err := h.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return h
}

// newFakeView returns a view on h with the given pool policy.
func newFakeView(t *testing.T, h *Host, strategy string, size PoolSize) *Engine {
	t.Helper()
	e, err := h.NewEngine(Options{PoolStrategy: strategy, PoolSize: &size})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// notify wakes waiters of await. Called with d.mu held.
func (d *fakeDriver) notify() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// await waits until cond (called with d.mu held) holds.
func (d *fakeDriver) await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		d.mu.Lock()
		ok, ch := cond(), d.changed
		d.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; driver: %s", what, d.summary())
		}
	}
}

func (d *fakeDriver) summary() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "%d created, %d agents running, %d resets;", len(d.order), d.agents, d.resets)
	for _, id := range d.order {
		fmt.Fprintf(&b, " %s:deleted=%d", id, d.sandboxes[id].deletes)
	}
	return b.String()
}

// creates returns how many sandboxes were created.
func (d *fakeDriver) creates() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.order)
}

// resetCount returns how many resets the fake agents answered.
func (d *fakeDriver) resetCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.resets
}

// deletes returns how many times sandbox id was deleted.
func (d *fakeDriver) deletes(id string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if sb := d.sandboxes[id]; sb != nil {
		return sb.deletes
	}
	return 0
}

// deleted returns how many Delete calls were made in all.
func (d *fakeDriver) deleted() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, sb := range d.sandboxes {
		n += sb.deletes
	}
	return n
}

// checkAllDeletedOnce fails the test unless every sandbox made was deleted
// exactly once, every fake agent ended and nothing reached the driver
// after Close.
func (d *fakeDriver) checkAllDeletedOnce(t *testing.T) {
	t.Helper()
	d.await(t, "every fake agent to end", func() bool { return d.agents == 0 })
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range d.order {
		if n := d.sandboxes[id].deletes; n != 1 {
			t.Errorf("sandbox %s deleted %d times, want once", id, n)
		}
	}
	if len(d.late) > 0 {
		t.Errorf("driver used after Close: %v", d.late)
	}
}

// errFakeCreate is the error of a creation the test asked to fail.
var errFakeCreate = errors.New("fake driver: create failed on request")

// failNextCreates makes the next n creations fail.
func (d *fakeDriver) failNextCreates(n int) {
	d.mu.Lock()
	d.failCreates = n
	d.mu.Unlock()
}

// failNextResets makes the next n resets report item as failed.
func (d *fakeDriver) failNextResets(n int, item string) {
	d.mu.Lock()
	d.failResets, d.failItem = n, item
	d.mu.Unlock()
}

func (d *fakeDriver) afterClose(op string) {
	if d.closed {
		d.late = append(d.late, op)
	}
}

func (d *fakeDriver) Create(ctx context.Context, req driver.CreateRequest) (driver.Sandbox, error) {
	if req.Spec == nil || req.Labels[driver.LabelManaged] != "true" {
		d.t.Errorf("create %s: spec %v, labels %v", req.ID, req.Spec != nil, req.Labels)
	}
	d.mu.Lock()
	d.afterClose("create " + req.ID)
	hold := d.holdCreates
	d.creating++
	d.notify()
	d.mu.Unlock()
	var err error
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.creating--
	d.notify()
	if err != nil {
		return nil, err
	}
	if d.failCreates > 0 {
		d.failCreates--
		return nil, errFakeCreate
	}
	if _, dup := d.sandboxes[req.ID]; dup {
		return nil, fmt.Errorf("sandbox %s exists", req.ID)
	}
	sb := &fakeSandbox{d: d, id: req.ID, gone: make(chan struct{})}
	d.sandboxes[req.ID] = sb
	d.order = append(d.order, req.ID)
	return sb, nil
}

func (d *fakeDriver) ListSandboxes(context.Context, map[string]string) ([]driver.SandboxInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []driver.SandboxInfo
	for _, id := range d.order {
		if d.sandboxes[id].deletes == 0 {
			out = append(out, driver.SandboxInfo{ID: id, Running: true})
		}
	}
	return out, nil
}

func (d *fakeDriver) Remove(context.Context, string) error {
	return errors.New("fake driver: Remove is not used by these tests")
}
func (d *fakeDriver) Prune(context.Context) (int, error) { return 0, nil }
func (d *fakeDriver) ImageInfo(_ context.Context, name string) (driver.ImageInfo, error) {
	return driver.ImageInfo{Name: name, ID: "fake"}, nil
}
func (d *fakeDriver) ImportImage(context.Context, string, string, map[string]string) error {
	return errors.New("fake driver: no images")
}
func (d *fakeDriver) RemoveImage(context.Context, string) error {
	return errors.New("fake driver: no images")
}
func (d *fakeDriver) ListImages(context.Context, map[string]string) ([]string, error) {
	return nil, nil
}
func (d *fakeDriver) Info(context.Context) (driver.BackendInfo, error) {
	return driver.BackendInfo{Name: "fake"}, nil
}
func (d *fakeDriver) Close() error {
	d.mu.Lock()
	d.closed = true
	d.notify()
	d.mu.Unlock()
	return nil
}

// fakeSandbox is one fake container: Start runs its fake agent, Delete
// kills it (closes its pipes) as removing a container would.
type fakeSandbox struct {
	d       *fakeDriver
	id      string
	gone    chan struct{} // closed by the first Delete
	deletes int           // guarded by d.mu
	// resetAsks counts Reset frames the engine sent, answered or not
	// (guarded by d.mu).
	resetAsks int
	stdinR    *io.PipeReader
	stdoutW   *io.PipeWriter
}

func (s *fakeSandbox) ID() string        { return s.id }
func (s *fakeSandbox) NetNSPath() string { return "" }

func (s *fakeSandbox) Start(context.Context) (driver.Stdio, error) {
	stdinR, stdinW := io.Pipe()
	stdoutR, stdoutW := io.Pipe()
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	if s.deletes > 0 {
		return driver.Stdio{}, errors.New("fake sandbox: start after delete")
	}
	s.stdinR, s.stdoutW = stdinR, stdoutW
	s.d.agents++
	s.d.notify()
	go s.serve(stdinR, stdoutW)
	return driver.Stdio{Stdin: stdinW, Stdout: stdoutR, Stderr: strings.NewReader("")}, nil
}

func (s *fakeSandbox) Delete(context.Context) error {
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	d.afterClose("delete " + s.id)
	s.deletes++
	if s.deletes == 1 {
		close(s.gone)
		if s.stdinR != nil {
			s.stdinR.CloseWithError(errors.New("fake sandbox deleted"))
			s.stdoutW.CloseWithError(errors.New("fake sandbox deleted"))
		}
	}
	d.notify()
	return nil
}

// serve is the fake agent: Ready, then Exec → stdout naming the sandbox and
// an Exit, Reset → a ResetReport of every checklist item (failed ones when
// the test asked), Shutdown → exit. A reader goroutine buffers the engine's
// frames as a real pipe would, so the engine's writes never wait on an
// agent busy with a held reset.
func (s *fakeSandbox) serve(stdin io.Reader, stdout *io.PipeWriter) {
	defer func() {
		stdout.Close()
		s.d.mu.Lock()
		s.d.agents--
		s.d.notify()
		s.d.mu.Unlock()
	}()
	frames := make(chan agent.Frame, 64)
	go func() {
		defer close(frames)
		r := agent.NewReader(stdin)
		for {
			f, err := r.Read()
			if err != nil {
				return
			}
			if f.Type == agent.TypeReset {
				s.d.mu.Lock()
				s.resetAsks++
				s.d.mu.Unlock()
			}
			select {
			case frames <- f:
			case <-s.gone:
				return
			}
		}
	}()
	w := agent.NewWriter(stdout)
	if w.WriteJSON(agent.TypeReady, 0, agent.Ready{Version: agent.ProtocolVersion}) != nil {
		return
	}
	for f := range frames {
		var err error
		switch f.Type {
		case agent.TypeExec:
			if s.d.takeBreak() {
				return // the agent dies mid-request
			}
			err = s.exec(w, f, frames)
		case agent.TypeStdin, agent.TypeStdinEOF, agent.TypeDetach:
		case agent.TypeReset:
			err = w.WriteJSON(agent.TypeOK, f.ID, s.reset())
		case agent.TypeShutdown:
			return
		default:
			err = w.WriteJSON(agent.TypeError, f.ID, agent.Error{Message: "fake agent: unsupported " + f.Type.String()})
		}
		if err != nil {
			return
		}
	}
}

// takeBreak reports whether this exec is one the test asked to kill the
// agent.
func (d *fakeDriver) takeBreak() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.breakExecs > 0 {
		d.breakExecs--
		return true
	}
	return false
}

func (s *fakeSandbox) exec(w *agent.Writer, f agent.Frame, frames <-chan agent.Frame) error {
	var ex agent.Exec
	if err := f.Decode(&ex); err != nil {
		return w.WriteJSON(agent.TypeError, f.ID, agent.Error{Message: err.Error(), Code: "invalid"})
	}
	s.d.mu.Lock()
	sticky := s.d.stickyExecs
	s.d.execs++
	s.d.notify()
	s.d.mu.Unlock()
	if sticky {
		// A program that runs until it is killed: wait for the engine's
		// KILL for this request, then report the kill like the agent.
		for g := range frames {
			var sig agent.Signal
			if g.Type == agent.TypeSignal && g.ID == f.ID && g.Decode(&sig) == nil && sig.Signal == "KILL" {
				return w.WriteJSON(agent.TypeExit, f.ID, agent.Exit{ExitCode: 137, Signal: "KILL", DurationMs: 1})
			}
		}
		return io.EOF
	}
	if err := w.Write(agent.TypeStdout, f.ID, []byte("ran in "+s.id)); err != nil {
		return err
	}
	return w.WriteJSON(agent.TypeExit, f.ID, agent.Exit{ExitCode: 0, DurationMs: 1})
}

// reset waits while the test holds resets (or until the sandbox is
// deleted) and returns the report the test asked for.
func (s *fakeSandbox) reset() agent.ResetReport {
	d := s.d
	d.mu.Lock()
	hold := d.holdResets
	d.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-s.gone:
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	fail := ""
	if d.failResets > 0 {
		d.failResets--
		fail = d.failItem
	}
	d.resets++
	d.notify()
	var rep agent.ResetReport
	for _, name := range agent.ResetItems {
		item := agent.ResetItem{Name: name, OK: true, Micros: 1}
		if name == fail {
			item = agent.ResetItem{Name: name, Detail: "fake agent: failed on request"}
		}
		rep.Items = append(rep.Items, item)
	}
	return rep
}

// awaitPool waits until cond (called with p.mu held) holds.
func awaitPool(t *testing.T, p *pool, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		ok, ch := cond(), p.changed
		p.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out waiting for the pool: %s", what)
		}
	}
}

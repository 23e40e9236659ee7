package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/isol8/isol8"
	"github.com/isol8/isol8/engine"
	"github.com/isol8/isol8/registry"
)

// fakeEngine records what the CLI asks of the engine and answers from its
// fields. With block set, executions wait until their context is cancelled.
type fakeEngine struct {
	mu sync.Mutex

	events    []engine.Event
	result    *engine.Result
	execErr   error
	block     bool
	started   chan struct{}
	startOnce sync.Once

	setupErr   error
	backendErr error // Backend's answer (the connection is made there first)
	setupOpts  []engine.SetupOptions

	found      *engine.CleanupReport // DryRun answer
	removed    *engine.CleanupReport // real answer
	cleanupErr error
	cleanups   []engine.CleanupOptions

	reqs    []engine.Request
	stopped int

	builds   []engine.BuildOptions
	buildRes engine.BuildResult
	buildErr error
	customs  []engine.CustomImage
}

// The fake stands for both public interfaces the CLI uses.
var (
	_ isol8.Engine = (*fakeEngine)(nil)
	_ isol8.Admin  = (*fakeEngine)(nil)
)

func (f *fakeEngine) Start(context.Context, isol8.StartOptions) error { return nil }

func (f *fakeEngine) BuildImage(_ context.Context, o engine.BuildOptions) (engine.BuildResult, error) {
	f.builds = append(f.builds, o)
	return f.buildRes, f.buildErr
}

func (f *fakeEngine) ListCustomImages(context.Context) ([]engine.CustomImage, error) {
	return f.customs, nil
}

func (f *fakeEngine) PutFile(context.Context, string, []byte) error {
	return errors.New("fake engine: no files")
}

func (f *fakeEngine) GetFile(context.Context, string) ([]byte, error) {
	return nil, errors.New("fake engine: no files")
}

func (f *fakeEngine) markStarted() {
	f.startOnce.Do(func() {
		if f.started != nil {
			close(f.started)
		}
	})
}

func (f *fakeEngine) Execute(ctx context.Context, req engine.Request) (*engine.Result, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	f.markStarted()
	if f.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if f.execErr != nil {
		return nil, f.execErr
	}
	if f.result == nil {
		return &engine.Result{}, nil
	}
	r := *f.result
	return &r, nil
}

func (f *fakeEngine) ExecuteStream(ctx context.Context, req engine.Request) (<-chan engine.Event, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	if f.execErr != nil {
		return nil, f.execErr
	}
	ch := make(chan engine.Event, len(f.events)+1)
	go func() {
		defer close(ch)
		f.markStarted()
		if f.block {
			<-ctx.Done()
			return
		}
		for _, ev := range f.events {
			ch <- ev
		}
	}()
	return ch, nil
}

func (f *fakeEngine) SetupImages(_ context.Context, o engine.SetupOptions) error {
	f.setupOpts = append(f.setupOpts, o)
	return f.setupErr
}

func (f *fakeEngine) Cleanup(_ context.Context, o engine.CleanupOptions) (*engine.CleanupReport, error) {
	f.cleanups = append(f.cleanups, o)
	if f.cleanupErr != nil {
		return nil, f.cleanupErr
	}
	rep := f.removed
	if o.DryRun {
		rep = f.found
	}
	if rep == nil {
		rep = &engine.CleanupReport{}
	}
	return rep, nil
}

func (f *fakeEngine) Backend(context.Context) (engine.BackendInfo, error) {
	if f.backendErr != nil {
		return engine.BackendInfo{}, f.backendErr
	}
	return engine.BackendInfo{Name: "containerd", Address: "/run/fake.sock", Version: "v2.0.0", Revision: "0123456789abcdef"}, nil
}

func (f *fakeEngine) Stop(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped++
	return nil
}

// harness runs the CLI in-process with temporary cwd and home, a fake
// engine and the public registries' default configuration.
type harness struct {
	t       *testing.T
	cwd     string
	home    string
	env     map[string]string
	stdin   string
	fake    *fakeEngine
	newErr  error
	opts    *engine.Options // options of the last engine built
	engines int
	notify  func(c chan<- os.Signal)
	stdinIs stdinKind // what the fake stdin pretends to be (default: other)
	now     time.Time
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	home := t.TempDir()
	return &harness{
		t:    t,
		cwd:  t.TempDir(),
		home: home,
		env:  map[string]string{"HOME": home},
		fake: &fakeEngine{},
		now:  time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
	}
}

type cliResult struct {
	code   int
	stdout string
	stderr string
}

func (r cliResult) output() string { return r.stdout + r.stderr }

func (h *harness) run(args ...string) cliResult {
	h.t.Helper()
	var out, errb bytes.Buffer
	a := newApp(strings.NewReader(h.stdin), &out, &errb, h.env, h.cwd)
	a.home = h.home
	a.now = func() time.Time { return h.now }
	newFake := func(o engine.Options) (*fakeEngine, error) {
		h.engines++
		h.opts = &o
		if h.newErr != nil {
			return nil, h.newErr
		}
		return h.fake, nil
	}
	a.newEngine = func(o engine.Options) (isol8.Engine, error) {
		f, err := newFake(o)
		if err != nil {
			return nil, err
		}
		return f, nil
	}
	a.newAdmin = func(o engine.Options) (isol8.Admin, error) {
		f, err := newFake(o)
		if err != nil {
			return nil, err
		}
		return f, nil
	}
	// The public registries' defaults, never the host's own files.
	a.registries = func(context.Context) registry.Config { return registry.Config{} }
	a.notify = h.notify
	a.stdinKind = func() stdinKind { return h.stdinIs }
	a.stopNotify = func(chan<- os.Signal) {}
	code := a.run(args)
	return cliResult{code: code, stdout: out.String(), stderr: errb.String()}
}

// lastRequest returns the request the engine received.
func (h *harness) lastRequest() engine.Request {
	h.t.Helper()
	if len(h.fake.reqs) == 0 {
		h.t.Fatal("the engine received no request")
	}
	return h.fake.reqs[len(h.fake.reqs)-1]
}

// write creates a file below dir with content, making parents.
func write(t *testing.T, dir, rel, content string) string {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func wantCode(t *testing.T, r cliResult, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
}

func wantContains(t *testing.T, what, got string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(got, s) {
			t.Errorf("%s does not contain %q:\n%s", what, s, got)
		}
	}
}

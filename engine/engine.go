// Package engine orchestrates sandboxes: it validates requests, resolves
// runtimes and images, writes the runtime spec, drives a sandbox's init agent
// and turns what the agent reports into results and events (timeouts, output
// caps, secret masking). Container backends live behind package driver.
package engine

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/config"
	"github.com/isol8/isol8/driver"
	"github.com/isol8/isol8/internal/initbin"
	"github.com/isol8/isol8/seccomp"
)

// Engine runs executions. It is safe for concurrent use.
type Engine struct {
	opts   Options
	log    *slog.Logger
	sem    chan struct{}
	limits limits

	// Start runs one attempt at a time on a context of its own; a failed
	// attempt is retried by the next caller (lifecycle.go).
	startMu  sync.Mutex
	starting *startAttempt
	started  bool
	// inflight counts executions, file operations and prewarms; Stop
	// waits for them (lifecycle.go).
	inflight sync.WaitGroup
	// stopCtx is cancelled when Stop gives up waiting for work in flight.
	stopCtx    context.Context
	stopCancel context.CancelFunc
	drv        driver.Driver // made by Options.NewDriver at Start
	initPath   string
	profile    *specs.LinuxSeccomp
	// profileErr delivers the seccomp validation verdict once; profileOK
	// keeps it.
	profileErr  chan error
	profileMu   sync.Mutex
	profileDone bool
	profileBad  error

	pool *pool
	ids  *identities // host identities of sandboxes (user namespaces)

	// Persistent mode: one sandbox for the engine's life, one runtime.
	pmu        ctxMutex // waiters give up at their context's deadline
	persistent *sandbox
	pruntime   string

	mu      sync.Mutex
	stopped bool
	live    map[string]*sandbox // every sandbox not yet destroyed
	imageMu sync.Mutex          // serialises on-demand image builds
}

// limits are the parsed per-sandbox resource limits.
type limits struct {
	memory, sandboxSize, tmpSize int64
}

// Defaults applied to zero Options fields.
const (
	DefaultTimeoutMs     = 30000
	DefaultMemoryLimit   = "512m"
	DefaultCPULimit      = 1.0
	DefaultPidsLimit     = 64
	DefaultMaxOutputSize = 1 << 20
	DefaultSandboxSize   = "512m"
	DefaultTmpSize       = "256m"
	DefaultMaxConcurrent = 10
)

// New validates opts, fills in defaults and returns an engine. It does not
// touch the backend yet: Start (or the first execution) connects.
func New(opts Options) (*Engine, error) {
	if err := normalize(&opts); err != nil {
		return nil, err
	}
	var l limits
	var err error
	if l.memory, err = config.ParseMemoryLimit(opts.MemoryLimit); err != nil {
		return nil, invalid(err)
	}
	if l.sandboxSize, err = config.ParseMemoryLimit(opts.SandboxSize); err != nil {
		return nil, invalid(err)
	}
	if l.tmpSize, err = config.ParseMemoryLimit(opts.TmpSize); err != nil {
		return nil, invalid(err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = newMaskingLogger(log, opts.Secrets)
	stopCtx, stopCancel := context.WithCancel(context.Background())
	e := &Engine{
		stopCtx:    stopCtx,
		stopCancel: stopCancel,
		opts:       opts,
		log:        log,
		sem:        make(chan struct{}, opts.MaxConcurrent),
		limits:     l,
		live:       map[string]*sandbox{},
	}
	e.pool = newPool(e, opts.PoolStrategy, *opts.PoolSize)
	return e, nil
}

func normalize(o *Options) error {
	if o.Mode == "" {
		o.Mode = ModeEphemeral
	}
	if o.Mode != ModeEphemeral && o.Mode != ModePersistent {
		return invalidf("Unknown mode: %q. Expected ephemeral or persistent", o.Mode)
	}
	if o.Network == "" {
		o.Network = NetworkNone
	}
	switch o.Network {
	case NetworkNone, NetworkHost:
	case NetworkFiltered:
		return invalidf("network mode %q is not available yet in this build", o.Network)
	default:
		return invalidf("Unknown network mode: %q. Expected none, host or filtered", o.Network)
	}
	if o.CPULimit == 0 {
		o.CPULimit = DefaultCPULimit
	}
	if o.CPULimit < 0 {
		return invalidf("Invalid CPU limit: %v. Must be greater than 0", o.CPULimit)
	}
	if o.MemoryLimit == "" {
		o.MemoryLimit = DefaultMemoryLimit
	}
	if o.SandboxSize == "" {
		o.SandboxSize = DefaultSandboxSize
	}
	if o.TmpSize == "" {
		o.TmpSize = DefaultTmpSize
	}
	if o.PidsLimit == 0 {
		o.PidsLimit = DefaultPidsLimit
	}
	if o.PidsLimit < 0 {
		return invalidf("Invalid pids limit: %d. Must be at least 1", o.PidsLimit)
	}
	if o.MaxOutputSize == 0 {
		o.MaxOutputSize = DefaultMaxOutputSize
	}
	if o.MaxOutputSize < 0 {
		return invalidf("Invalid max output size: %d. Must be at least 1", o.MaxOutputSize)
	}
	if o.TimeoutMs == 0 {
		o.TimeoutMs = DefaultTimeoutMs
	}
	if o.TimeoutMs < 0 {
		return invalidf("Invalid timeout: %d ms. Must be greater than 0", o.TimeoutMs)
	}
	if err := normalizeBounds(o); err != nil {
		return err
	}
	if o.MaxConcurrent == 0 {
		o.MaxConcurrent = DefaultMaxConcurrent
	}
	if o.MaxConcurrent < 1 {
		return invalidf("Semaphore max must be >= 1")
	}
	if o.PoolStrategy == "" {
		o.PoolStrategy = PoolFast
	}
	if o.PoolStrategy != PoolFast && o.PoolStrategy != PoolSecure {
		return invalidf("Unknown pool strategy: %q. Expected fast or secure", o.PoolStrategy)
	}
	if o.PoolSize == nil {
		o.PoolSize = &PoolSize{Clean: 1, Dirty: 1}
	}
	if o.PoolSize.Clean < 0 || o.PoolSize.Dirty < 0 {
		return invalidf("Invalid pool size: clean and dirty must not be negative")
	}
	if o.Security == nil {
		o.Security = &Security{}
	}
	if o.Security.Seccomp == "" {
		o.Security.Seccomp = SeccompStrict
	}
	for k := range o.Secrets {
		if err := validEnvName(k); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) start(ctx context.Context) error {
	sec := e.opts.Security
	profile, err := seccomp.Parse(sec.Seccomp, sec.CustomProfilePath)
	if err != nil {
		return invalid(err)
	}
	e.profile = profile
	// Compiling the profile with libseccomp takes ~15 ms; it runs beside the
	// connection and the first sandbox's creation, and every sandbox waits
	// for its verdict before its init starts (profileOK).
	e.profileErr = make(chan error, 1)
	go func() { e.profileErr <- seccomp.ValidateFor(sec.Seccomp, sec.CustomProfilePath, profile) }()
	if err := e.startIdentities(); err != nil {
		return err
	}
	e.initPath = e.opts.InitPath
	if e.initPath == "" {
		if e.initPath, err = initbin.Path(""); err != nil {
			return err
		}
	}
	if e.opts.NewDriver == nil {
		return api.FailedPreconditionf("engine has no driver: set Options.NewDriver (isol8.New picks containerd)")
	}
	drv, err := e.opts.NewDriver(ctx, e.log)
	if err != nil {
		return err
	}
	e.drv = drv
	return nil
}

// Stop refuses new work, waits for the work in flight (cancelling it when
// ctx ends first), then removes every sandbox the engine still holds (except
// those kept with Persist) and closes the backend connection. It is
// idempotent.
func (e *Engine) Stop(ctx context.Context) error {
	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		return nil
	}
	e.stopped = true
	e.mu.Unlock()
	e.waitStart(ctx)
	e.waitInflight(ctx)
	e.pool.drain(ctx)
	e.dropPersistent(ctx)
	e.mu.Lock()
	live := e.live
	e.live = map[string]*sandbox{}
	e.mu.Unlock()
	var wg sync.WaitGroup
	for _, sb := range live {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.destroy(ctx, sb)
		}()
	}
	wg.Wait()
	if e.drv != nil {
		return e.drv.Close()
	}
	return nil
}

// acquire takes a slot of the maxConcurrent semaphore (FIFO by Go's channel
// fairness is not guaranteed, but waiting is bounded by ctx).
func (e *Engine) acquire(ctx context.Context) error {
	select {
	case e.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *Engine) release() { <-e.sem }

// profileOK waits for the seccomp profile's validation. A profile that
// fails refuses every execution.
func (e *Engine) profileOK(ctx context.Context) error {
	e.profileMu.Lock()
	defer e.profileMu.Unlock()
	if !e.profileDone {
		select {
		case e.profileBad = <-e.profileErr:
			e.profileDone = true
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if e.profileBad != nil {
		return invalid(e.profileBad)
	}
	return nil
}

// errStopped is returned for work asked of a stopped engine.
var errStopped = api.Unavailable(errors.New("engine is stopped"))

func (e *Engine) writableRoot() bool {
	return e.opts.ReadonlyRootFs != nil && !*e.opts.ReadonlyRootFs
}

func invalid(err error) error {
	if errdefs.IsInvalidArgument(err) {
		return err
	}
	return api.InvalidArgument(err)
}

func invalidf(format string, args ...any) error {
	return api.InvalidArgumentf(format, args...)
}

// Package engine orchestrates sandboxes: it validates requests, resolves
// runtimes and images, writes the runtime spec, drives a sandbox's init agent
// and turns what the agent reports into results and events (timeouts, output
// caps, secret masking). Container backends live behind package driver.
//
// A Host is the shared, long-lived part (driver connection, global
// concurrency limit, warm pools by sandbox shape, live sandboxes, admin
// work); an Engine is a cheap view on a host with its own request policy.
// New makes an engine on a private host.
package engine

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/containerd/errdefs"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/config"
	"github.com/isol8/isol8/proxy"
)

// Engine is a view on a Host with its own request policy: options and
// limits, secrets, seccomp profile, pool policy and, in persistent mode,
// its one sandbox. Views are cheap; the host owns the connection, the
// global concurrency limit, the warm pools and every sandbox. An engine
// made by New has a private host that its Stop stops too. It is safe for
// concurrent use.
type Engine struct {
	host *Host
	// ownHost is set for New's private host, which Stop stops too.
	ownHost bool
	opts    Options
	log     *slog.Logger
	limits  limits
	// rules are the filtered network's compiled allow/deny patterns.
	rules *proxy.Rules
	// work counts this view's work in flight; Stop waits for it
	// (lifecycle.go).
	work *gate

	// startMu guards the view's part of Start: its shape (with the parsed
	// seccomp profile) and the host pool for it.
	startMu sync.Mutex
	shape   *shape
	pool    *pool

	// Persistent mode: one sandbox for the engine's life, one runtime.
	pmu        ctxMutex // waiters give up at their context's deadline
	persistent *sandbox
	pruntime   string
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

// New validates opts, fills in defaults and returns an engine on a host of
// its own (made from opts' operator settings), which Stop stops too. It does
// not touch the backend yet: Start (or the first execution) connects.
func New(opts Options) (*Engine, error) {
	if err := normalize(&opts); err != nil {
		return nil, err
	}
	ho := opts.HostOptions()
	if ho.Logger != nil {
		// The host serves this one engine: its logs (sandbox steps, agent
		// lines) are masked with the engine's secrets as the engine's are.
		ho.Logger = newMaskingLogger(ho.Logger, opts.Secrets)
	}
	h, err := NewHost(ho)
	if err != nil {
		return nil, err
	}
	e, err := newView(h, opts)
	if err != nil {
		return nil, err
	}
	e.ownHost = true
	h.views[e] = struct{}{}
	return e, nil
}

// newView validates opts and makes a view on h (not yet registered).
func newView(h *Host, opts Options) (*Engine, error) {
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
	rules, err := compileFilter(opts)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = newMaskingLogger(log, opts.Secrets)
	return &Engine{host: h, opts: opts, log: log, limits: l, work: newGate(), rules: rules}, nil
}

// Host returns the host the engine is a view on.
func (e *Engine) Host() *Host { return e.host }

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
	case NetworkNone, NetworkHost, NetworkFiltered:
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

// Stop refuses new work of this view, waits for its work in flight
// (cancelling it when ctx ends first) and removes its persistent sandbox
// (unless kept with Persist). The host and its warm pools stay for other
// views; an engine made by New stops its private host too, which removes
// everything. It is idempotent.
func (e *Engine) Stop(ctx context.Context) error {
	e.stopView(ctx)
	e.host.forget(e)
	if e.ownHost {
		return e.host.Stop(ctx)
	}
	return nil
}

func (e *Engine) stopView(ctx context.Context) {
	if !e.work.close() {
		return
	}
	e.work.wait(ctx)
	if sb := e.dropPersistent(ctx); sb != nil {
		e.host.destroy(ctx, sb)
	}
}

// errStopped is returned for work asked of a stopped engine.
var errStopped = api.Unavailable(errors.New("engine is stopped"))

func invalid(err error) error {
	if errdefs.IsInvalidArgument(err) {
		return err
	}
	return api.InvalidArgument(err)
}

func invalidf(format string, args ...any) error {
	return api.InvalidArgumentf(format, args...)
}

package engine

import (
	"context"
	"io"
	"log/slog"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/audit"
	"github.com/isol8/isol8/driver"
	"github.com/isol8/isol8/internal/initbin"
	"github.com/isol8/isol8/netguard"
	"github.com/isol8/isol8/remotecode"
)

// HostOptions are the operator's settings of a host: the backend and host
// paths, global limits and the bounds every request is held to. None of
// them can come from a client: Host.Session takes api.Options, which has no
// field for them.
type HostOptions struct {
	// NewDriver connects the backend at Start; the host closes what it
	// returns at Stop. The host knows backends only through it, so the
	// process that wires it picks one (isol8.New: containerd).
	NewDriver DriverFactory
	// Containerd is read by the containerd driver factory, not the host.
	Containerd ContainerdOptions
	// UserNS is the host id range sandboxes' user namespaces map onto; nil
	// means the defaults.
	UserNS *UserNSOptions
	// InitPath is the isol8-init binary on the host; empty means the
	// embedded copy or one found beside the executable.
	InitPath string
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// Progress receives human progress lines for long work (image builds).
	Progress io.Writer
	// MaxConcurrent bounds the executions running at once over every view
	// of the host (0: DefaultMaxConcurrent).
	MaxConcurrent int
	// Bounds on what one request of any view may ask (0: the Default*
	// values). A view may set tighter ones, never looser.
	MaxTimeoutMs        int64
	MaxOutputPaths      int
	MaxOutputFilesBytes int64
	// CustomProfilePath is the seccomp profile a session that asks for the
	// custom mode gets; empty refuses the custom mode to sessions. Views
	// made with NewEngine name their own.
	CustomProfilePath string
	// AllowPrivateDestinations opens the SSRF guard for loopback, private
	// and link-local destinations (internal services, tests), for remote
	// code fetches and the filtered network's proxy of every view.
	// Operator only: clients cannot set it.
	AllowPrivateDestinations bool
	// RemoteCode is the operator's remote-code policy (nil: disabled). A
	// session's client options can only tighten it (remotecode.Tighten);
	// views without a policy of their own get it.
	RemoteCode *remotecode.Policy
	// Audit is the audit log of every view that names none.
	Audit *audit.Logger
	// Resolver looks up the proxy's upstream names; nil is the system's.
	Resolver netguard.Resolver
	// OnSecurityEvent is told about every filtered-network refusal in any
	// view of the host (the audit log's hook for server sessions, whose
	// views have no hook of their own), besides the view's own hook.
	OnSecurityEvent func(api.SecurityEvent)
}

// Host is the long-lived, shared part of a process's sandboxes: the driver
// connection, the global concurrency limit, the warm pools (keyed by image
// and sandbox shape), the host identities of sandboxes, every live sandbox
// and the admin work (image setup, cleanup). Engines are cheap views on it
// with their own request policy. Stopping the host stops every view and
// removes everything it made. It is safe for concurrent use.
type Host struct {
	opts HostOptions
	log  *slog.Logger
	sem  chan struct{}
	work *gate

	// Start runs one attempt at a time on a context of its own; a failed
	// attempt is retried by the next caller (lifecycle.go).
	startMu  sync.Mutex
	starting *startAttempt
	started  bool
	drv      driver.Driver // made by HostOptions.NewDriver at Start
	initPath string
	ids      *identities // host identities of sandboxes (user namespaces)
	// identify, when set, gives sandboxes their host identities instead of
	// the user-namespace allocator, which needs root. Only unit tests set
	// it, on hosts they make, to run the pool and lifecycle logic over a
	// fake driver; real hosts always use the allocator.
	identify identityFunc

	mu      sync.Mutex
	live    map[string]*sandbox // every sandbox not yet destroyed
	pools   map[string]*pool    // poolKey → pool
	views   map[*Engine]struct{}
	imageMu sync.Mutex // serialises image builds
	stats   poolStats  // warm-pool hits and misses (stats.go)
	// lazyReg holds the host's package registries (install.go).
	lazyReg lazyRegistries
}

// NewHost validates o and returns a host. It does not touch the backend
// yet: Start (or a view's first execution) connects.
func NewHost(o HostOptions) (*Host, error) {
	if o.MaxConcurrent == 0 {
		o.MaxConcurrent = DefaultMaxConcurrent
	}
	if o.MaxConcurrent < 1 {
		return nil, invalidf("Semaphore max must be >= 1")
	}
	b := Options{MaxTimeoutMs: o.MaxTimeoutMs, MaxOutputPaths: o.MaxOutputPaths, MaxOutputFilesBytes: o.MaxOutputFilesBytes}
	if err := normalizeBounds(&b); err != nil {
		return nil, err
	}
	o.MaxTimeoutMs, o.MaxOutputPaths, o.MaxOutputFilesBytes = b.MaxTimeoutMs, b.MaxOutputPaths, b.MaxOutputFilesBytes
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Host{
		opts:  o,
		log:   log,
		sem:   make(chan struct{}, o.MaxConcurrent),
		work:  newGate(),
		live:  map[string]*sandbox{},
		pools: map[string]*pool{},
		views: map[*Engine]struct{}{},
	}, nil
}

// HostOptions returns the operator part of o, for a host of its own
// (engine.New) or to set one up from an engine's configuration.
func (o Options) HostOptions() HostOptions {
	h := HostOptions{
		NewDriver: o.NewDriver, Containerd: o.Containerd, UserNS: o.UserNS, InitPath: o.InitPath,
		Logger: o.Logger, Progress: o.Progress, MaxConcurrent: o.MaxConcurrent,
		MaxTimeoutMs: o.MaxTimeoutMs, MaxOutputPaths: o.MaxOutputPaths, MaxOutputFilesBytes: o.MaxOutputFilesBytes,
		RemoteCode: o.RemoteCode, AllowPrivateDestinations: o.AllowPrivateDestinations, Audit: o.Audit, Resolver: o.Resolver,
	}
	if o.Security != nil {
		h.CustomProfilePath = o.Security.CustomProfilePath
	}
	return h
}

// NewEngine returns a view on the host with the request policy of opts
// (limits, secrets, seccomp profile, pool strategy and size, mode, Persist,
// OnKeep, StreamMaxOutput). The host's settings apply instead of opts'
// NewDriver, Containerd, UserNS, InitPath and MaxConcurrent; opts' bounds
// (MaxTimeoutMs, ...) may only be tighter than the host's. Logger and
// Progress default to the host's. Views are for trusted callers: a client's
// options go through Session.
func (h *Host) NewEngine(opts Options) (*Engine, error) {
	if err := h.bound(&opts); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = h.log
	}
	if opts.Progress == nil {
		opts.Progress = h.opts.Progress
	}
	e, err := newView(h, opts)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.work.isClosed() {
		return nil, errStopped
	}
	h.views[e] = struct{}{}
	return e, nil
}

// Session returns a view for a client: what the client may ask for comes
// from c, everything else is the host's (a custom seccomp profile is
// HostOptions.CustomProfilePath; nothing is kept after a run).
func (h *Host) Session(c api.Options) (*Engine, error) {
	o := Options{}.WithClient(c)
	o.Security.CustomProfilePath = h.opts.CustomProfilePath
	// The client's remoteCode options narrow the host's policy at each
	// fetch; bad patterns are refused now.
	if _, err := remotecode.Tighten(remotecode.Policy{}, c.RemoteCode); err != nil {
		return nil, err
	}
	o.RemoteCode = h.opts.RemoteCode
	if o.Security.Seccomp == SeccompCustom && h.opts.CustomProfilePath == "" {
		return nil, invalidf("seccomp mode %q: this host has no custom profile", SeccompCustom)
	}
	return h.NewEngine(o)
}

// bound fills a view's request bounds from the host's and refuses looser
// ones.
func (h *Host) bound(o *Options) error {
	if o.MaxTimeoutMs == 0 {
		o.MaxTimeoutMs = h.opts.MaxTimeoutMs
	}
	if o.MaxOutputPaths == 0 {
		o.MaxOutputPaths = h.opts.MaxOutputPaths
	}
	if o.MaxOutputFilesBytes == 0 {
		o.MaxOutputFilesBytes = h.opts.MaxOutputFilesBytes
	}
	switch {
	case o.MaxTimeoutMs > h.opts.MaxTimeoutMs:
		return invalidf("Invalid maxTimeoutMs: %d. Must be at most %d (the host's)", o.MaxTimeoutMs, h.opts.MaxTimeoutMs)
	case o.MaxOutputPaths > h.opts.MaxOutputPaths:
		return invalidf("Invalid maxOutputPaths: %d. Must be at most %d (the host's)", o.MaxOutputPaths, h.opts.MaxOutputPaths)
	case o.MaxOutputFilesBytes > h.opts.MaxOutputFilesBytes:
		return invalidf("Invalid maxOutputFilesBytes: %d. Must be at most %d (the host's)", o.MaxOutputFilesBytes, h.opts.MaxOutputFilesBytes)
	}
	o.MaxConcurrent = h.opts.MaxConcurrent
	if o.RemoteCode == nil {
		o.RemoteCode = h.opts.RemoteCode
	}
	if o.Audit == nil {
		o.Audit = h.opts.Audit
	}
	o.AllowPrivateDestinations = o.AllowPrivateDestinations || h.opts.AllowPrivateDestinations
	o.NewDriver, o.Containerd, o.UserNS, o.InitPath = h.opts.NewDriver, h.opts.Containerd, h.opts.UserNS, h.opts.InitPath
	o.AllowPrivateDestinations, o.Resolver = h.opts.AllowPrivateDestinations, h.opts.Resolver
	return nil
}

func (h *Host) forget(e *Engine) {
	h.mu.Lock()
	delete(h.views, e)
	h.mu.Unlock()
}

func (h *Host) start(ctx context.Context) error {
	h.initPath = h.opts.InitPath
	if h.initPath == "" {
		var err error
		if h.initPath, err = initbin.Path(""); err != nil {
			return err
		}
	}
	if h.opts.NewDriver == nil {
		return api.FailedPreconditionf("engine has no driver: set HostOptions.NewDriver or Options.NewDriver (isol8.New and isol8.NewHost pick containerd)")
	}
	drv, err := h.opts.NewDriver(ctx, h.log)
	if err != nil {
		return err
	}
	if !sandboxUserNS(drv) {
		// Nothing to allocate: the backend would ignore the namespace
		// (and allocating needs root, which such a backend may not).
		h.identify = func(context.Context, string, *specs.Spec) (*identity, error) { return nil, nil }
	}
	if err := h.startIdentities(); err != nil {
		_ = drv.Close()
		return err
	}
	h.drv = drv
	return nil
}

// sandboxUserNS reports whether drv runs each sandbox in the user namespace
// the spec names (every driver unless it says otherwise: Docker has only a
// daemon-wide user namespace).
func sandboxUserNS(drv driver.Driver) bool {
	if u, ok := drv.(interface{ SandboxUserNS() bool }); ok {
		return u.SandboxUserNS()
	}
	return true
}

// Stop refuses new work, stops every view (each waits for its work in
// flight, cancelling it when ctx ends first, and drops its persistent
// sandbox), then removes every sandbox the host still holds (except those
// kept with Persist) and closes the backend connection. It is idempotent.
func (h *Host) Stop(ctx context.Context) error {
	h.mu.Lock()
	first := h.work.close()
	views := make([]*Engine, 0, len(h.views))
	for e := range h.views {
		views = append(views, e)
	}
	h.views = map[*Engine]struct{}{}
	h.mu.Unlock()
	if !first {
		return nil
	}
	var wg sync.WaitGroup
	for _, e := range views {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.stopView(ctx)
		}()
	}
	wg.Wait()
	h.waitStart(ctx)
	h.work.wait(ctx)
	h.mu.Lock()
	pools := h.pools
	h.pools = map[string]*pool{}
	h.mu.Unlock()
	for _, p := range pools {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.drain(ctx)
		}()
	}
	wg.Wait()
	h.mu.Lock()
	live := h.live
	h.live = map[string]*sandbox{}
	h.mu.Unlock()
	for _, sb := range live {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.destroy(ctx, sb)
		}()
	}
	wg.Wait()
	if h.drv != nil {
		return h.drv.Close()
	}
	return nil
}

// poolFor returns the host's pool for sandboxes of shape s under a pool
// policy, making it on first use.
func (h *Host) poolFor(s *shape, strategy string, size PoolSize) *pool {
	key := poolKey(s, strategy, size)
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.pools[key]
	if !ok {
		p = newPool(h, s, strategy, size)
		if h.work.isClosed() {
			p.closed = true
		} else {
			h.pools[key] = p
		}
	}
	return p
}

// acquire takes a slot of the host's maxConcurrent semaphore (FIFO by Go's
// channel fairness is not guaranteed, but waiting is bounded by ctx).
func (h *Host) acquire(ctx context.Context) error {
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Host) release() { <-h.sem }

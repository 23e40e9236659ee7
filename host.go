package isol8

import (
	"context"

	"github.com/isol8/isol8/engine"
)

// Types of the operator's side: host settings, image setup and cleanup.
type (
	HostOptions    = engine.HostOptions
	SetupOptions   = engine.SetupOptions
	CleanupOptions = engine.CleanupOptions
	CleanupReport  = engine.CleanupReport
	ContainerInfo  = engine.ContainerInfo
	BackendInfo    = engine.BackendInfo
	BuildOptions   = engine.BuildOptions
	BuildResult    = engine.BuildResult
	CustomImage    = engine.CustomImage
)

// Admin is the operator's work on a backend: which backend it is, building
// the runtime images, and removing what isol8 left behind. A local Host
// implements it; so can a remote one.
type Admin interface {
	// Backend connects and reports the backend's name, version and address.
	Backend(ctx context.Context) (BackendInfo, error)
	// SetupImages builds the runtime images, or confirms they are up to date.
	SetupImages(ctx context.Context, o SetupOptions) error
	// Cleanup lists, and unless o.DryRun removes, the sandboxes no running
	// process uses (and with o.Images the isol8 images).
	Cleanup(ctx context.Context, o CleanupOptions) (*CleanupReport, error)
	// BuildImage builds a custom image (a runtime image plus packages and
	// a setup script), or reports it up to date.
	BuildImage(ctx context.Context, o BuildOptions) (BuildResult, error)
	// ListCustomImages lists the custom images isol8 built.
	ListCustomImages(ctx context.Context) ([]CustomImage, error)
	// Stop ends the work in flight and removes what it made. It is
	// idempotent.
	Stop(ctx context.Context) error
}

// Host is a long-lived local host: one backend connection, one global
// limit on concurrent executions (HostOptions.MaxConcurrent), warm pools
// shared by every engine of the same sandbox shape, and the admin work.
// Engines made from it are cheap views with their own request policy; a
// server makes one per client session. Stop stops every engine of the host
// and removes everything it made.
type Host struct{ h *engine.Host }

var _ Admin = (*Host)(nil)

// NewHost validates o and returns a host. Nothing is started until Start or
// the first execution. Without o.NewDriver the host runs on containerd
// (ContainerdDriver).
func NewHost(o HostOptions) (*Host, error) {
	if o.NewDriver == nil {
		o.NewDriver = ContainerdDriver(o.Containerd)
	}
	h, err := engine.NewHost(o)
	if err != nil {
		return nil, err
	}
	return &Host{h}, nil
}

// Start connects to the backend. It is called lazily and may be retried.
func (h *Host) Start(ctx context.Context) error { return h.h.Start(ctx) }

// Stop stops every engine of the host and removes every sandbox it made.
func (h *Host) Stop(ctx context.Context) error { return h.h.Stop(ctx) }

// Engine returns an engine on the host with the policy of opts (for a
// trusted caller: opts may name a custom profile path or Persist). The
// host's wiring and MaxConcurrent apply instead of opts'.
func (h *Host) Engine(opts Options) (Engine, error) {
	e, err := h.h.NewEngine(opts)
	if err != nil {
		return nil, err
	}
	return &localEngine{e}, nil
}

// Session returns an engine for a client's options: nothing that is the
// operator's (backend, host paths, Persist, global limits) can come from c.
func (h *Host) Session(c ClientOptions) (Engine, error) {
	e, err := h.h.Session(c)
	if err != nil {
		return nil, err
	}
	return &localEngine{e}, nil
}

// Backend connects and reports the backend.
func (h *Host) Backend(ctx context.Context) (BackendInfo, error) { return h.h.Backend(ctx) }

// SetupImages builds the runtime images; progress goes to
// HostOptions.Progress.
func (h *Host) SetupImages(ctx context.Context, o SetupOptions) error {
	return h.h.SetupImages(ctx, o)
}

// Cleanup removes what crashed or kept runs left behind (see Admin).
func (h *Host) Cleanup(ctx context.Context, o CleanupOptions) (*CleanupReport, error) {
	return h.h.Cleanup(ctx, o)
}

// BuildImage builds a custom image (see Admin).
func (h *Host) BuildImage(ctx context.Context, o BuildOptions) (BuildResult, error) {
	return h.h.BuildImage(ctx, o)
}

// ListCustomImages lists the custom images isol8 built.
func (h *Host) ListCustomImages(ctx context.Context) ([]CustomImage, error) {
	return h.h.ListCustomImages(ctx)
}

package engine

import (
	"context"
	"io"
	"log/slog"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/audit"
	"github.com/isol8/isol8/driver"
	"github.com/isol8/isol8/netguard"
	"github.com/isol8/isol8/registry"
	"github.com/isol8/isol8/remotecode"
)

// Network modes.
const (
	NetworkNone     = api.NetworkNone
	NetworkHost     = api.NetworkHost
	NetworkFiltered = api.NetworkFiltered
)

// Seccomp modes.
const (
	SeccompStrict     = api.SeccompStrict
	SeccompUnconfined = api.SeccompUnconfined
	SeccompCustom     = api.SeccompCustom
)

// Modes.
const (
	ModeEphemeral  = api.ModeEphemeral
	ModePersistent = api.ModePersistent
)

// Options configure an engine. The JSON names
// are the contract used over HTTP; fields tagged "-" are local wiring.
type Options struct {
	Mode           string            `json:"mode,omitempty"`
	Network        string            `json:"network,omitempty"`
	NetworkFilter  *NetworkFilter    `json:"networkFilter,omitempty"`
	CPULimit       float64           `json:"cpuLimit,omitempty"`
	MemoryLimit    string            `json:"memoryLimit,omitempty"`
	PidsLimit      int64             `json:"pidsLimit,omitempty"`
	ReadonlyRootFs *bool             `json:"readonlyRootFs,omitempty"`
	MaxOutputSize  int64             `json:"maxOutputSize,omitempty"`
	Secrets        map[string]string `json:"secrets,omitempty"`
	TimeoutMs      int64             `json:"timeoutMs,omitempty"`
	Image          string            `json:"image,omitempty"`
	SandboxSize    string            `json:"sandboxSize,omitempty"`
	TmpSize        string            `json:"tmpSize,omitempty"`
	Debug          bool              `json:"debug,omitempty"`
	Persist        bool              `json:"persist,omitempty"`
	LogNetwork     bool              `json:"logNetwork,omitempty"`
	Security       *Security         `json:"security,omitempty"`
	PoolStrategy   string            `json:"poolStrategy,omitempty"`
	PoolSize       *PoolSize         `json:"poolSize,omitempty"`
	MaxConcurrent  int               `json:"maxConcurrent,omitempty"`
	// Bounds on what one request may ask (zero: the Default* values).
	MaxTimeoutMs        int64 `json:"maxTimeoutMs,omitempty"`
	MaxOutputPaths      int   `json:"maxOutputPaths,omitempty"`
	MaxOutputFilesBytes int64 `json:"maxOutputFilesBytes,omitempty"`

	// StreamMaxOutput caps each stream of a streamed execution; 0 (the
	// default) streams everything. MaxOutputSize caps buffered results only.
	StreamMaxOutput int64 `json:"-"`

	// Backend wiring, never taken from clients.
	// NewDriver connects the backend at Start; the engine closes what it
	// returns at Stop. The engine knows backends only through it, so the
	// process that wires the engine picks one (isol8.New: containerd).
	NewDriver DriverFactory `json:"-"`
	// Containerd is read by the containerd driver factory, not the engine.
	Containerd ContainerdOptions `json:"-"`
	// UserNS is the host id range sandboxes' user namespaces map onto; nil
	// means the defaults.
	UserNS *UserNSOptions `json:"-"`
	// InitPath is the isol8-init binary on the host; empty means the
	// embedded copy or one found beside the executable.
	InitPath string `json:"-"`
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger `json:"-"`
	// Progress receives human progress lines for long work (image builds).
	Progress io.Writer `json:"-"`

	// buildDir, set only by custom image builds, is a host directory
	// mounted as the sandbox's /sandbox instead of the tmpfs, so what the
	// install step writes there outlives the sandbox.
	buildDir string
	// OnKeep is told about each sandbox left running because of Persist.
	OnKeep func(KeptSandbox) `json:"-"`
	// Registries are where package installs fetch from; nil means the
	// host's own configuration (registry.FromHost), read once.
	Registries *registry.Config `json:"-"`
	// RemoteCode is the operator's policy codeUrl requests are fetched
	// under; nil disables remote code (the library default).
	RemoteCode *remotecode.Policy `json:"-"`
	// RemoteCodeRequest is a client's remoteCode options: they can only
	// narrow RemoteCode (remotecode.Tighten), never widen it.
	RemoteCodeRequest *api.RemoteCodePolicy `json:"-"`
	// AllowPrivateDestinations opens the SSRF guard for loopback, private
	// and link-local addresses: remote code fetches and the filtered
	// network's proxy (operator setting).
	AllowPrivateDestinations bool `json:"-"`
	// Audit receives one record per execution; nil records nothing.
	Audit *audit.Logger `json:"-"`
	// OnSecurityEvent is told about each refusal of the filtered network
	// as it happens (the audit log's hook); buffered results carry them in
	// Result.SecurityEvents too.
	OnSecurityEvent func(api.SecurityEvent) `json:"-"`
	// Resolver looks up the proxy's upstream names; nil is the system's
	// (tests plug theirs in).
	Resolver netguard.Resolver `json:"-"`
	// TrustedNetworkHosts may resolve to private addresses through the
	// filtered network's proxy although the SSRF guard is on: host names
	// the operator's own configuration names (a private package mirror).
	// The allow/deny patterns still apply. Never taken from clients.
	TrustedNetworkHosts []string `json:"-"`
}

// DriverFactory connects a backend; log is the engine's logger.
type DriverFactory func(ctx context.Context, log *slog.Logger) (driver.Driver, error)

// NetworkFilter and PoolSize are the api types.
type (
	NetworkFilter = api.NetworkFilter
	PoolSize      = api.PoolSize
)

// Security selects the seccomp profile.
type Security struct {
	Seccomp           string `json:"seccomp,omitempty"`
	CustomProfilePath string `json:"customProfilePath,omitempty"`
}

// ContainerdOptions locate (or start) containerd.
type ContainerdOptions struct {
	// Address of containerd's socket; empty means CONTAINERD_ADDRESS, then
	// /run/containerd/containerd.sock.
	Address string
	// RuntimeBinary is the OCI runtime (default "runc").
	RuntimeBinary string
	// NoAutoStart disables starting a private containerd when none listens.
	NoAutoStart bool
}

// Client returns the part of o a client may ask for.
func (o Options) Client() api.Options {
	c := api.Options{
		Mode: o.Mode, Network: o.Network, NetworkFilter: o.NetworkFilter, CPULimit: o.CPULimit,
		MemoryLimit: o.MemoryLimit, PidsLimit: o.PidsLimit, ReadonlyRootFs: o.ReadonlyRootFs,
		MaxOutputSize: o.MaxOutputSize, Secrets: o.Secrets, TimeoutMs: o.TimeoutMs, Image: o.Image,
		SandboxSize: o.SandboxSize, TmpSize: o.TmpSize, Debug: o.Debug, LogNetwork: o.LogNetwork,
		PoolStrategy: o.PoolStrategy, PoolSize: o.PoolSize, RemoteCode: o.RemoteCodeRequest,
	}
	if o.Security != nil {
		c.Security = &api.Security{Seccomp: o.Security.Seccomp}
	}
	return c
}

// WithClient returns o with every client-askable setting taken from c; o
// keeps the operator's settings (backend, host paths of binaries and
// profiles, Persist, global limits, wiring). Nothing in c can change those:
// api.Options has no field for them.
func (o Options) WithClient(c api.Options) Options {
	o.Mode, o.Network, o.NetworkFilter, o.CPULimit = c.Mode, c.Network, c.NetworkFilter, c.CPULimit
	o.MemoryLimit, o.PidsLimit, o.ReadonlyRootFs = c.MemoryLimit, c.PidsLimit, c.ReadonlyRootFs
	o.MaxOutputSize, o.Secrets, o.TimeoutMs, o.Image = c.MaxOutputSize, c.Secrets, c.TimeoutMs, c.Image
	o.SandboxSize, o.TmpSize, o.Debug, o.LogNetwork = c.SandboxSize, c.TmpSize, c.Debug, c.LogNetwork
	o.PoolStrategy, o.PoolSize = c.PoolStrategy, c.PoolSize
	o.RemoteCodeRequest = c.RemoteCode
	sec := &Security{}
	if o.Security != nil {
		sec.CustomProfilePath = o.Security.CustomProfilePath
	}
	if c.Security != nil {
		sec.Seccomp = c.Security.Seccomp
	}
	o.Security = sec
	return o
}

package engine

import (
	"context"
	"io"
	"log/slog"

	"github.com/isol8/isol8/driver"
)

// Network modes.
const (
	NetworkNone     = "none"
	NetworkHost     = "host"
	NetworkFiltered = "filtered"
)

// Seccomp modes.
const (
	SeccompStrict     = "strict"
	SeccompUnconfined = "unconfined"
	SeccompCustom     = "custom"
)

// Modes.
const (
	ModeEphemeral  = "ephemeral"
	ModePersistent = "persistent"
)

// Options configure an engine (surface.md §3.1 Isol8Options). The JSON names
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

	// Backend wiring, never taken from clients.
	// NewDriver connects the backend at Start; the engine closes what it
	// returns at Stop. The engine knows backends only through it, so the
	// process that wires the engine picks one (isol8.New: containerd).
	NewDriver DriverFactory `json:"-"`
	// Containerd is read by the containerd driver factory, not the engine.
	Containerd ContainerdOptions `json:"-"`
	// InitPath is the isol8-init binary on the host; empty means the
	// embedded copy or one found beside the executable.
	InitPath string `json:"-"`
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger `json:"-"`
	// Progress receives human progress lines for long work (image builds).
	Progress io.Writer `json:"-"`
}

// DriverFactory connects a backend; log is the engine's logger.
type DriverFactory func(ctx context.Context, log *slog.Logger) (driver.Driver, error)

// NetworkFilter holds the allow/deny patterns of filtered mode.
type NetworkFilter struct {
	Whitelist []string `json:"whitelist"`
	Blacklist []string `json:"blacklist"`
}

// Security selects the seccomp profile.
type Security struct {
	Seccomp           string `json:"seccomp,omitempty"`
	CustomProfilePath string `json:"customProfilePath,omitempty"`
}

// PoolSize is the number of clean and dirty sandboxes kept per pool key.
type PoolSize struct {
	Clean int `json:"clean"`
	Dirty int `json:"dirty"`
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

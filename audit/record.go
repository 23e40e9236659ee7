// Package audit writes the audit log: one JSON line per execution (and per
// network request the filtered proxy blocked) to a file with size-based
// rotation and age-based retention, or to standard output. Writing never
// blocks an execution: records go through a bounded buffer to one writer
// goroutine, and a full buffer drops the record, counts it (Dropped, for
// /metrics) and logs a rate-limited warning. The package also reads the log
// back (Read, Filter) for `isol8 audit`.
//
// It imports no other isol8 package: the engine fills records, a server
// puts who is calling on the context (WithCaller).
package audit

import "context"

// Record types.
const (
	TypeExecution      = "execution"
	TypeNetworkBlocked = "network_blocked"
)

// Outcomes of an execution.
const (
	OutcomeSuccess = "success" // exit code 0
	OutcomeFailure = "failure" // the program exited non-zero
	OutcomeTimeout = "timeout"
	OutcomeOOM     = "oom"
	// OutcomeError: refused or failed before or around the run (invalid
	// request, remote code refused or mismatching, setup failed, backend
	// error); Error says why. Nothing ran, or the run did not finish.
	OutcomeError = "error"
)

// Record is one line of the audit log. The reference's fields come first,
// in its order (executionId, userId, timestamp, runtime, codeHash,
// containerId, exitCode, durationMs); code and output come last and only
// when the configuration asks for them.
type Record struct {
	Type        string `json:"type"`
	ExecutionID string `json:"executionId,omitempty"`
	UserID      string `json:"userId"`
	// Timestamp is when the execution started (RFC 3339, UTC, ms).
	Timestamp string `json:"timestamp"`
	Runtime   string `json:"runtime,omitempty"`
	// CodeHash is the SHA-256 (hex) of the code that ran (or of cmd).
	CodeHash    string `json:"codeHash"`
	ContainerID string `json:"containerId"`
	ExitCode    int    `json:"exitCode"`
	DurationMs  int64  `json:"durationMs"`

	RequestID string `json:"requestId,omitempty"`
	Tenant    string `json:"tenant,omitempty"`
	KeyPrefix string `json:"keyPrefix,omitempty"`

	Outcome   string            `json:"outcome,omitempty"`
	Error     string            `json:"error,omitempty"`
	Truncated bool              `json:"truncated"`
	TimedOut  bool              `json:"timedOut"`
	OOMKilled bool              `json:"oomKilled"`
	Source    *Source           `json:"source,omitempty"`
	Image     string            `json:"image,omitempty"`
	Mode      string            `json:"mode,omitempty"`
	Limits    *Limits           `json:"limits,omitempty"`
	Network   *Network          `json:"network,omitempty"`
	Resources *Usage            `json:"resourceUsage,omitempty"`
	Blocked   *Blocked          `json:"blocked,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`

	Code   string `json:"code,omitempty"`
	Stdout string `json:"stdout,omitempty"`
	Stderr string `json:"stderr,omitempty"`
}

// Source says where the code came from.
type Source struct {
	// Kind is "inline", "file" (the client sent a file: it set a file
	// extension), "cmd" or "url".
	Kind string `json:"kind"`
	// URL and FinalURL (after redirects) of remote code; ExpectedHash is
	// the codeHash the request asked for.
	URL          string `json:"url,omitempty"`
	FinalURL     string `json:"finalUrl,omitempty"`
	ExpectedHash string `json:"expectedHash,omitempty"`
}

// Limits are the sandbox limits an execution ran under.
type Limits struct {
	TimeoutMs   int64   `json:"timeoutMs"`
	MemoryLimit string  `json:"memoryLimit"`
	CPULimit    float64 `json:"cpuLimit"`
	PidsLimit   int64   `json:"pidsLimit"`
	MaxOutput   int64   `json:"maxOutputSize"`
	SandboxSize string  `json:"sandboxSize,omitempty"`
	TmpSize     string  `json:"tmpSize,omitempty"`
	Seccomp     string  `json:"seccomp,omitempty"`
}

// Network is the network mode and its filter.
type Network struct {
	Mode      string   `json:"mode"`
	Whitelist []string `json:"whitelist,omitempty"`
	Blacklist []string `json:"blacklist,omitempty"`
	// RemoteCodePolicy describes the policy a codeUrl was fetched under.
	RemoteCodePolicy string `json:"remoteCodePolicy,omitempty"`
}

// Usage is what the program used, measured by the sandbox's agent (rusage
// of the program and its reaped children) and by the sandbox's cgroup
// (everything in the sandbox during the run, agent included).
type Usage struct {
	CPUTimeMs    int64   `json:"cpuTimeMs"`
	PeakMemoryMB float64 `json:"peakMemoryMB"`
	// CgroupPeakMemoryMB is the sandbox cgroup's memory high-water mark
	// during the run; absent when the cgroup could not be read.
	CgroupPeakMemoryMB *float64 `json:"cgroupPeakMemoryMB,omitempty"`
}

// Blocked is a network request the filtered proxy refused.
type Blocked struct {
	Method string `json:"method"`
	Host   string `json:"host"`
	Port   int    `json:"port,omitempty"`
	Reason string `json:"reason"`
}

// Caller is who asked for an execution, as the server knows it.
type Caller struct {
	RequestID string
	Tenant    string
	// KeyPrefix is the first characters of the API key, never the key.
	KeyPrefix string
}

type callerKey struct{}

// WithCaller returns ctx carrying c; records made under it carry c.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller WithCaller put on ctx.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

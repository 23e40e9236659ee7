package api

// Request is one execution. Exactly one of Code, CodeURL and Cmd must be
// non-blank. The JSON names are those of the REST API.
type Request struct {
	Runtime              string            `json:"runtime"`
	Code                 string            `json:"code,omitempty"`
	CodeURL              string            `json:"codeUrl,omitempty"`
	CodeHash             string            `json:"codeHash,omitempty"`
	AllowInsecureCodeURL bool              `json:"allowInsecureCodeUrl,omitempty"`
	Cmd                  string            `json:"cmd,omitempty"`
	TimeoutMs            int64             `json:"timeoutMs,omitempty"`
	Env                  map[string]string `json:"env,omitempty"`
	FileExtension        string            `json:"fileExtension,omitempty"`
	Stdin                string            `json:"stdin,omitempty"`
	Files                map[string]string `json:"files,omitempty"`
	OutputPaths          []string          `json:"outputPaths,omitempty"`
	InstallPackages      []string          `json:"installPackages,omitempty"`
	SetupScript          string            `json:"setupScript,omitempty"`
	Workdir              string            `json:"workdir,omitempty"`
	AgentFlags           string            `json:"agentFlags,omitempty"`
	Metadata             map[string]string `json:"metadata,omitempty"`
}

// Result is the outcome of a buffered execution.
type Result struct {
	Stdout        string            `json:"stdout"`
	Stderr        string            `json:"stderr"`
	ExitCode      int               `json:"exitCode"`
	DurationMs    int64             `json:"durationMs"`
	Truncated     bool              `json:"truncated"`
	ExecutionID   string            `json:"executionId"`
	Runtime       string            `json:"runtime"`
	Timestamp     string            `json:"timestamp"`
	ContainerID   string            `json:"containerId,omitempty"`
	Files         map[string]string `json:"files,omitempty"`
	OOMKilled     bool              `json:"oomKilled,omitempty"`
	TimedOut      bool              `json:"-"`
	ResourceUsage *ResourceUsage    `json:"resourceUsage,omitempty"`
	// NetworkLogs are the proxy's requests in filtered mode, in the order
	// they arrived; only with logNetwork and when there is at least one.
	NetworkLogs []NetworkLogEntry `json:"networkLogs,omitempty"`
	// SecurityEvents are the filtered network's refusals during the run,
	// for the audit log; they are not part of the result's JSON.
	SecurityEvents []SecurityEvent `json:"-"`
}

// ResourceUsage is measured by the sandbox's agent from the program's
// rusage.
type ResourceUsage struct {
	CPUPercent      float64 `json:"cpuPercent"`
	CPUTimeMs       int64   `json:"cpuTimeMs"`
	MemoryMB        float64 `json:"memoryMB"`
	PeakMemoryMB    float64 `json:"peakMemoryMB"`
	NetworkBytesIn  int64   `json:"networkBytesIn"`
	NetworkBytesOut int64   `json:"networkBytesOut"`
}

// Event types and phases of a streamed execution.
const (
	EventStdout = "stdout"
	EventStderr = "stderr"
	EventExit   = "exit"
	EventError  = "error"

	PhaseSetup = "setup"
	PhaseCode  = "code"
)

// Event is one streamed piece of an execution.
type Event struct {
	Type  string `json:"type"`
	Data  string `json:"data"`
	Phase string `json:"phase,omitempty"`
	// Truncated is set on the final exit event when a streaming output cap
	// cut the program's output.
	Truncated bool `json:"truncated,omitempty"`
	// OOMKilled is set on the final exit event when the memory limit
	// killed the program.
	OOMKilled bool `json:"oomKilled,omitempty"`
}

// Execution modes.
const (
	ModeEphemeral  = "ephemeral"
	ModePersistent = "persistent"
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

// Pool strategies.
const (
	// PoolFast reuses a sandbox after its agent reset it and verified it
	// clean.
	PoolFast = "fast"
	// PoolSecure never hands out a used sandbox.
	PoolSecure = "secure"
)

// NetworkFilter holds the allow/deny host patterns of filtered mode.
type NetworkFilter struct {
	Whitelist []string `json:"whitelist"`
	Blacklist []string `json:"blacklist"`
}

// PoolSize is the number of clean and dirty sandboxes kept per pool.
type PoolSize struct {
	Clean int `json:"clean"`
	Dirty int `json:"dirty"`
}

// Security is the part of the sandbox's security a client may choose: the
// seccomp mode. A custom profile's path on the host is the operator's
// (engine options), never a client's.
type Security struct {
	Seccomp string `json:"seccomp,omitempty"`
}

// Options are the execution options a client may ask for (the JSON names
// of the REST API). They hold nothing that is the operator's to decide:
// the backend, the host paths of binaries and profiles, keeping sandboxes
// after a run, global concurrency. A server decodes client options into
// this type, so operator settings cannot arrive from a client at all.
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
	LogNetwork     bool              `json:"logNetwork,omitempty"`
	Security       *Security         `json:"security,omitempty"`
	PoolStrategy   string            `json:"poolStrategy,omitempty"`
	PoolSize       *PoolSize         `json:"poolSize,omitempty"`
	// RemoteCode can only narrow the server's remote-code policy.
	RemoteCode *RemoteCodePolicy `json:"remoteCode,omitempty"`
}

// Network log actions.
const (
	NetworkAllow = "ALLOW"
	NetworkBlock = "BLOCK"
)

// NetworkLogEntry is one request through the filtered network's proxy.
type NetworkLogEntry struct {
	// Timestamp is when the request arrived (ISO 8601, seconds, offset).
	Timestamp string `json:"timestamp"`
	Method    string `json:"method"` // "GET", "CONNECT", ...
	Host      string `json:"host"`   // normalised: lower case, IDNA, no port
	// Path is the request's path and query; null for CONNECT.
	Path   *string `json:"path"`
	Action string  `json:"action"` // ALLOW or BLOCK
	// Rule is what decided: "whitelist:<pattern>", "blacklist:<pattern>",
	// "no whitelist match", "no whitelist", "private destination (...)",
	// "sni mismatch", "tunnel limit".
	Rule string `json:"rule"`
	// Status is the HTTP status the proxy answered with (200 for an
	// established tunnel, 0 when the client went away first).
	Status int `json:"status"`
	// BytesSent went from the sandbox upstream (request bodies, tunnel
	// data); BytesReceived came back (response bodies, tunnel data).
	BytesSent     int64 `json:"bytesSent"`
	BytesReceived int64 `json:"bytesReceived"`
	DurationMs    int64 `json:"durationMs"`
}

// SecurityEvent is a refusal worth auditing.
type SecurityEvent struct {
	Type      string            `json:"type"`    // "network_blocked"
	Message   string            `json:"message"` // "Security event: <type>"
	Details   map[string]string `json:"details"` // method, host, reason
	Timestamp string            `json:"timestamp"`
}

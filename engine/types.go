package engine

// Request is one execution (surface.md §3.1 ExecutionRequest). Exactly one of
// Code, CodeURL and Cmd must be non-blank.
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

// Result is the outcome of a buffered execution (surface.md §3.1
// ExecutionResult, plus oomKilled).
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
}

// ResourceUsage is measured by the agent from the process's rusage.
type ResourceUsage struct {
	CPUPercent      float64 `json:"cpuPercent"`
	CPUTimeMs       int64   `json:"cpuTimeMs"`
	MemoryMB        float64 `json:"memoryMB"`
	PeakMemoryMB    float64 `json:"peakMemoryMB"`
	NetworkBytesIn  int64   `json:"networkBytesIn"`
	NetworkBytesOut int64   `json:"networkBytesOut"`
}

// Event types and phases of a streamed execution (surface.md §3.1 StreamEvent).
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
	// (Options.StreamMaxOutput) cut the program's output.
	Truncated bool `json:"truncated,omitempty"`
	// OOMKilled is set on the final exit event when the memory limit
	// killed the program.
	OOMKilled bool `json:"oomKilled,omitempty"`
}

package agent

// Paths inside every sandbox.
const (
	// InitPath is where the engine bind-mounts isol8-init (read-only).
	InitPath = "/.isol8-init"
	// SandboxDir is the writable, executable tmpfs user code runs in.
	SandboxDir = "/sandbox"
	// TmpDir is the writable, non-executable tmpfs.
	TmpDir = "/tmp"
)

// The identity user code runs as.
const (
	SandboxUID = 100
	SandboxGID = 101
)

// AgentThreads is how many OS threads (tasks, the main thread included) the
// agent makes at start and keeps; the Go runtime lands near it, not always on
// it. The engine creates the sandbox with room for AgentThreads plus
// AgentThreadsSlack on top of the user's pids limit, and once the agent is
// ready sets the limit to the user's plus the threads the agent really runs,
// so user code gets exactly the pids it asked for and cannot starve the agent.
const AgentThreads = 20

// AgentThreadsSlack is the headroom the agent's start may use beyond
// AgentThreads.
const AgentThreadsSlack = 12

// Ready is the agent's first message.
type Ready struct {
	Version int `json:"version"`
	PID     int `json:"pid"`
}

// Exec asks the agent to start one process. The agent answers with any number
// of TypeStdout/TypeStderr frames followed by exactly one TypeExit frame, or a
// single TypeError frame when the process could not be started.
type Exec struct {
	Argv []string `json:"argv"`
	Env  []string `json:"env,omitempty"`
	// Dir is the working directory; it must be inside SandboxDir.
	Dir string `json:"dir,omitempty"`
	// UID and GID of the process. Zero values mean SandboxUID/SandboxGID;
	// running as root must be asked for with Root.
	Root bool `json:"root,omitempty"`
	// TimeoutMs kills the whole process group after this long (0: none).
	TimeoutMs int64 `json:"timeoutMs,omitempty"`
	// MaxOutput caps the bytes forwarded per stream (0: unlimited). Output past
	// the cap is drained and counted but not sent; a process that keeps writing
	// far past the cap (DrainLimit) is killed so a runaway writer ends quickly.
	MaxOutput int64 `json:"maxOutput,omitempty"`
	// Stdin says the engine will send TypeStdin frames and a TypeStdinEOF;
	// without it the process reads /dev/null.
	Stdin bool `json:"stdin,omitempty"`
	// Files are written (as the sandbox user, parent directories created)
	// before the process starts.
	Files []File `json:"files,omitempty"`
}

// File is a small file carried inline in an Exec.
type File struct {
	Path string `json:"path"`
	Data []byte `json:"data"` // base64 in JSON
	Mode uint32 `json:"mode,omitempty"`
}

// DrainLimit is how far past MaxOutput a stream may go before the agent kills
// the process group.
const DrainLimit = 16 << 20

// Exit reports how a process ended. It is sent only after the process has
// exited and both of its output pipes are closed, so no output follows it.
type Exit struct {
	ExitCode int    `json:"exitCode"`
	Signal   string `json:"signal,omitempty"`
	// TimedOut: the agent killed the group because TimeoutMs elapsed.
	TimedOut bool `json:"timedOut,omitempty"`
	// OOMKilled: the memory cgroup's OOM killer fired during the run.
	OOMKilled bool `json:"oomKilled,omitempty"`
	// OutputKilled: the agent killed the group for writing far past MaxOutput.
	OutputKilled bool `json:"outputKilled,omitempty"`
	// StdoutBytes and StderrBytes count everything the process wrote,
	// including what was dropped past MaxOutput.
	StdoutBytes int64 `json:"stdoutBytes"`
	StderrBytes int64 `json:"stderrBytes"`
	// Truncated: at least one stream exceeded MaxOutput.
	Truncated  bool  `json:"truncated,omitempty"`
	DurationMs int64 `json:"durationMs"`
	// Resource usage of the process and its reaped descendants.
	UserCPUMs   int64 `json:"userCpuMs"`
	SystemCPUMs int64 `json:"systemCpuMs"`
	MaxRSSKB    int64 `json:"maxRssKb"`
}

// Signal asks the agent to kill the process group of request ID.
type Signal struct {
	Signal string `json:"signal"` // "KILL" or "TERM"
}

// PutFile starts a file upload; the data follows in TypeFileData frames with
// the same id, ended by TypeFileEOF. The agent answers TypeOK or TypeError.
type PutFile struct {
	Path string `json:"path"`
	Mode uint32 `json:"mode,omitempty"`
}

// GetFile asks for a file; the agent answers TypeFileData frames and a
// TypeFileEOF, or TypeError.
type GetFile struct {
	Path string `json:"path"`
	// MaxBytes refuses files larger than this (0: no limit).
	MaxBytes int64 `json:"maxBytes,omitempty"`
	// Stat asks only for the size: the agent answers TypeOK with OK.Size
	// (or TypeError) and sends no data, so the engine can refuse files
	// before any byte moves.
	Stat bool `json:"stat,omitempty"`
}

// Reset makes a used sandbox fresh: every process of the sandbox user is
// killed, SandboxDir and TmpDir are emptied, and the result is verified. The
// agent answers TypeOK or TypeError.
type Reset struct{}

// Error reports a failed request.
type Error struct {
	Message string `json:"message"`
	// Code classifies the failure for the engine: "invalid" (bad request,
	// e.g. a path outside /sandbox), "notfound", or "" (internal).
	Code string `json:"code,omitempty"`
}

// OK acknowledges a request.
type OK struct {
	Size int64 `json:"size,omitempty"`
}

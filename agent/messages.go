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
	// The process always runs as SandboxUID/SandboxGID with no capability
	// (bounding set included): the protocol has no way to ask for root.
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
	// "INT" and "TERM" are delivered to the group (the program may handle
	// them); anything else ("KILL") kills it.
	Signal string `json:"signal"`
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

// Reset makes a used sandbox fresh and verifies it, item by item (see
// ResetItems). The agent answers a TypeOK frame carrying a ResetReport, even
// when items failed; TypeError only when it could not try (an execution
// still running, the agent not pid 1).
type Reset struct{}

// The reset checklist, in the order the agent works through it. Each item
// is both done and verified; the engine returns a sandbox to its pool only
// when every item passed.
const (
	// ResetProcesses: every process but the agent is killed and gone.
	ResetProcesses = "processes"
	// ResetFiles: SandboxDir, TmpDir, /dev/shm and /dev/mqueue are empty.
	ResetFiles = "files"
	// ResetSysVIPC: every SysV shared memory segment, message queue and
	// semaphore set is removed; /proc/sysvipc/* list nothing.
	ResetSysVIPC = "sysvipc"
	// ResetSockets: the kernel's unix-socket garbage collector has freed
	// sockets kept alive only by file descriptors in flight, and
	// /proc/net/{tcp,tcp6,udp,udp6,unix,raw,...} list no socket at all.
	ResetSockets = "sockets"
	// ResetDirAttrs: SandboxDir, TmpDir, /dev/shm and /dev/mqueue have no
	// extended attributes, their fresh owner and mode, and current times.
	ResetDirAttrs = "dir-attributes"
	// ResetDev: /dev holds exactly the expected nodes (names, types,
	// device numbers, modes, owners, link targets).
	ResetDev = "dev"
)

// ResetItems lists every checklist item; a report missing one fails.
var ResetItems = []string{ResetProcesses, ResetFiles, ResetSysVIPC, ResetSockets, ResetDirAttrs, ResetDev}

// ResetReport is the agent's answer to Reset: one entry per item, in order.
type ResetReport struct {
	Items []ResetItem `json:"items"`
}

// ResetItem is the outcome of one checklist item.
type ResetItem struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Detail says what was wrong when OK is false.
	Detail string `json:"detail,omitempty"`
	// Micros is how long the item took, in microseconds.
	Micros int64 `json:"us"`
}

// Failed returns the first item that failed or is missing from r (as an
// item with that name and a detail saying so), or nil when all passed.
func (r ResetReport) Failed() *ResetItem {
	seen := map[string]bool{}
	for i := range r.Items {
		if !r.Items[i].OK {
			return &r.Items[i]
		}
		seen[r.Items[i].Name] = true
	}
	for _, name := range ResetItems {
		if !seen[name] {
			return &ResetItem{Name: name, Detail: "not reported by the agent"}
		}
	}
	return nil
}

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

// Package isol8 runs untrusted Python, Node.js, Bun, Deno and Bash code in
// locked-down containerd sandboxes and returns its output.
//
// An Engine executes Requests. In the default ephemeral mode every execution
// gets a sandbox from a warm pool (reset between uses with the "fast"
// strategy, never reused with "secure"); in persistent mode one sandbox
// serves every execution of the engine and keeps its files. The JSON names of
// Request, Result, Event and Options are those of the isol8 REST API.
//
// Running sandboxes needs Linux, root, containerd and runc, and the runtime
// images (`isol8 setup`); see the repository's README.
package isol8

import (
	"context"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/engine"
)

// Version is the isol8 release.
const Version = api.Version

// The data types of the API. They are defined in package api (standard
// library only: a client can import it without the engine) and re-exported
// here so that callers of the library import one package. Options is the
// engine's: the client-askable options (api.Options) plus the operator's.
type (
	Request       = api.Request
	Result        = api.Result
	Event         = api.Event
	Options       = engine.Options
	ClientOptions = api.Options
	ResourceUsage = api.ResourceUsage
	// NetworkLogEntry is one request of the filtered network's proxy
	// (Result.NetworkLogs); SecurityEvent one of its refusals.
	NetworkLogEntry = api.NetworkLogEntry
	SecurityEvent   = api.SecurityEvent
	NetworkFilter   = api.NetworkFilter
	Security        = engine.Security
	PoolSize        = api.PoolSize
	UserNSOptions   = engine.UserNSOptions
)

// Event types and phases.
const (
	EventStdout = api.EventStdout
	EventStderr = api.EventStderr
	EventExit   = api.EventExit
	EventError  = api.EventError
	PhaseSetup  = api.PhaseSetup
	PhaseCode   = api.PhaseCode
)

// Modes, network modes and pool strategies.
const (
	ModeEphemeral   = api.ModeEphemeral
	ModePersistent  = api.ModePersistent
	NetworkNone     = api.NetworkNone
	NetworkHost     = api.NetworkHost
	NetworkFiltered = api.NetworkFiltered
	PoolFast        = api.PoolFast
	PoolSecure      = api.PoolSecure
)

// StartOptions control Engine.Start. It is defined in package api so that
// a remote client implements Engine without importing the engine.
type StartOptions = api.StartOptions

// Engine executes code in sandboxes. It is safe for concurrent use; at most
// MaxConcurrent executions of its host run at once and the rest wait their
// turn.
type Engine interface {
	// Start connects to containerd and optionally prewarms the pool. It is
	// called lazily by the first execution and may be called repeatedly.
	Start(ctx context.Context, opts StartOptions) error
	// Stop removes every sandbox of the engine. It is idempotent.
	Stop(ctx context.Context) error
	// Execute runs a request to completion.
	Execute(ctx context.Context, req Request) (*Result, error)
	// ExecuteStream runs a request and delivers its events as they happen;
	// the channel closes after the final exit (or error) event. Cancelling
	// ctx kills the program and releases its sandbox.
	ExecuteStream(ctx context.Context, req Request) (<-chan Event, error)
	// PutFile writes a file into the persistent sandbox (persistent mode,
	// after the first execution); paths are confined to /sandbox.
	PutFile(ctx context.Context, path string, data []byte) error
	// GetFile reads a file from the persistent sandbox.
	GetFile(ctx context.Context, path string) ([]byte, error)
}

// New validates opts and returns an engine on a host of its own (made from
// opts' operator settings), which its Stop stops too. Nothing is started
// until Start or the first execution. Without opts.NewDriver the engine
// runs on containerd (ContainerdDriver). Processes that run many engines
// make one Host and take engines from it.
func New(opts Options) (Engine, error) {
	if opts.NewDriver == nil {
		opts.NewDriver = ContainerdDriver(opts.Containerd)
	}
	e, err := engine.New(opts)
	if err != nil {
		return nil, err
	}
	return &localEngine{e}, nil
}

type localEngine struct{ *engine.Engine }

func (l *localEngine) Start(ctx context.Context, opts StartOptions) error {
	if err := l.Engine.Start(ctx); err != nil {
		return err
	}
	if len(opts.Prewarm) > 0 {
		return l.Engine.Prewarm(ctx, opts.Prewarm...)
	}
	return nil
}

package engine

import "github.com/isol8/isol8/api"

// The data types of executions are defined in package api (standard
// library only, shared with clients); these aliases keep the engine's own
// names.
type (
	Request       = api.Request
	Result        = api.Result
	ResourceUsage = api.ResourceUsage
	Event         = api.Event
)

// Event types and phases of a streamed execution.
const (
	EventStdout = api.EventStdout
	EventStderr = api.EventStderr
	EventExit   = api.EventExit
	EventError  = api.EventError

	PhaseSetup = api.PhaseSetup
	PhaseCode  = api.PhaseCode
)

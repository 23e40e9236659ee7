package api

// Labels isol8 puts on every container and image it makes. cleanup touches
// only what carries LabelManaged; users and operators may filter on them.
const (
	LabelManaged = "isol8.managed"
	LabelRuntime = "isol8.runtime"
	// LabelPID records the process that created a sandbox, so that orphans
	// of a crashed process can be told apart from sandboxes in use.
	LabelPID = "isol8.pid"
	// LabelPIDStart is that process's start time (clock ticks after boot),
	// so that a recycled pid is not taken for the creator.
	LabelPIDStart = "isol8.pid.start"
)

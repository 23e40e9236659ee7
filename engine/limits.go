package engine

import (
	"math"
	"time"
)

// Per-request bounds that keep the host's memory and the engine's timers
// sane whatever a request asks (defaults of the matching Options fields).
const (
	// DefaultMaxTimeoutMs is the largest timeout a request or the engine
	// default may ask for: one hour.
	DefaultMaxTimeoutMs = 3600000
	// DefaultMaxOutputPaths is how many outputPaths a request may name.
	DefaultMaxOutputPaths = 32
	// DefaultMaxOutputFilesBytes bounds the total size of the files read
	// back through outputPaths.
	DefaultMaxOutputFilesBytes = 64 << 20
)

// maxPidsLimit is the kernel's largest pid count (PID_MAX_LIMIT); a larger
// limit means nothing and would overflow once the agent's threads are added.
const maxPidsLimit = 4 << 20

// normalizeBounds fills in and checks the bounds of Options.
func normalizeBounds(o *Options) error {
	if o.PidsLimit > maxPidsLimit {
		return invalidf("Invalid pids limit: %d. Must be at most %d", o.PidsLimit, maxPidsLimit)
	}
	if o.MaxTimeoutMs == 0 {
		o.MaxTimeoutMs = DefaultMaxTimeoutMs
	}
	if o.MaxTimeoutMs < 0 {
		return invalidf("Invalid maxTimeoutMs: %d. Must be greater than 0", o.MaxTimeoutMs)
	}
	if o.TimeoutMs > o.MaxTimeoutMs {
		return invalidf("Invalid timeout: %d ms. Must be at most %d ms (maxTimeoutMs)", o.TimeoutMs, o.MaxTimeoutMs)
	}
	if o.MaxOutputPaths == 0 {
		o.MaxOutputPaths = DefaultMaxOutputPaths
	}
	if o.MaxOutputPaths < 0 {
		return invalidf("Invalid maxOutputPaths: %d. Must be at least 1", o.MaxOutputPaths)
	}
	if o.MaxOutputFilesBytes == 0 {
		o.MaxOutputFilesBytes = DefaultMaxOutputFilesBytes
	}
	if o.MaxOutputFilesBytes < 0 {
		return invalidf("Invalid maxOutputFilesBytes: %d. Must be at least 1", o.MaxOutputFilesBytes)
	}
	return nil
}

// addSat adds two non-negative durations, saturating at the largest one.
func addSat(a, b time.Duration) time.Duration {
	if a > math.MaxInt64-b {
		return time.Duration(math.MaxInt64)
	}
	return a + b
}

package engine

import (
	"context"
	"log/slog"
	"time"

	"github.com/isol8/isol8/agent"
)

// Debug events of the engine. Each is one slog record at Debug level whose
// message is a stable phrase ("image resolve", "sandbox create", "pool
// acquire", "execution done", ...) so users can grep for it; durations are
// attributes named "dur". They cost nothing when the logger drops Debug.

func (e *Engine) debugOn() bool { return e.log.Enabled(context.Background(), slog.LevelDebug) }

func (h *Host) debugOn() bool { return h.log.Enabled(context.Background(), slog.LevelDebug) }

// resolveImage is ensureImage with its debug event.
func (e *Engine) resolveImage(ctx context.Context, p *plan) error {
	t0 := time.Now()
	err := e.ensureImage(ctx, p.image, p.rt.Name)
	if e.debugOn() {
		e.log.Debug("image resolve", "image", p.image, "runtime", p.rt.Name, "ok", err == nil, "dur", time.Since(t0))
	}
	return err
}

// logStep records one step of a sandbox's life (create, start, agent
// ready, reset, destroy) with its duration since t0.
func (h *Host) logStep(step, id string, t0 time.Time, err error) {
	if !h.debugOn() {
		return
	}
	if err != nil {
		h.log.Debug(step, "container", id, "dur", time.Since(t0), "error", err)
		return
	}
	h.log.Debug(step, "container", id, "dur", time.Since(t0))
}

// logAcquire records whether an execution found a ready sandbox.
func (h *Host) logAcquire(image, id string, hit bool, t0 time.Time) {
	h.stats.count(hit)
	if !h.debugOn() {
		return
	}
	result := "miss"
	if hit {
		result = "hit"
	}
	h.log.Debug("pool acquire", "result", result, "image", image, "container", id, "dur", time.Since(t0))
}

// logDone records an execution's completion metadata.
func (e *Engine) logDone(sb *sandbox, res *Result, exit agent.Exit) {
	if !e.debugOn() {
		return
	}
	attrs := []any{"container", sb.id, "exitCode", res.ExitCode, "durationMs", res.DurationMs,
		"truncated", exit.Truncated, "timedOut", exit.TimedOut, "oomKilled", exit.OOMKilled,
		"stdoutBytes", exit.StdoutBytes, "stderrBytes", exit.StderrBytes}
	if u := res.ResourceUsage; u != nil {
		attrs = append(attrs, "cpuTimeMs", u.CPUTimeMs, "cpuPercent", u.CPUPercent, "peakMemoryMB", u.PeakMemoryMB)
	}
	if exit.Signal != "" {
		attrs = append(attrs, "signal", exit.Signal)
	}
	e.log.Debug("execution done", attrs...)
}

// outputCap is the per-stream output limit the agent applies to the main
// run: the buffered cap for results, the streaming cap (none by default)
// for streams.
func (e *Engine) outputCap(s sink) int64 {
	if _, ok := s.(*streamSink); ok {
		return e.opts.StreamMaxOutput
	}
	return e.opts.MaxOutputSize
}

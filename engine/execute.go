package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/google/uuid"

	"github.com/isol8/isol8/agent"
	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/audit"
	"github.com/isol8/isol8/image"
)

// sink receives what an execution produces. Buffered executions collect it;
// streamed ones turn it into events.
type sink interface {
	output(phase string, stream agent.Type, data []byte)
}

// Execute runs one request to completion and returns its result.
func (e *Engine) Execute(ctx context.Context, req Request) (*Result, error) {
	start := time.Now()
	req, src, p, err := e.prepare(ctx, start, req)
	if err != nil {
		return nil, err
	}
	col := newBufferedSink(e.opts.Secrets)
	res, err := e.execute(ctx, p, col)
	if err != nil {
		err = maskError(e.opts.Secrets, err)
		e.auditExec(ctx, start, req, src, p, nil, err)
		return nil, err
	}
	col.fill(res, e.opts.MaxOutputSize)
	e.auditExec(ctx, start, req, src, p, res, nil)
	return res, nil
}

// prepare fetches a codeUrl request's code and plans the request, in the
// documented order; a refusal is audited here, with what was known.
func (e *Engine) prepare(ctx context.Context, start time.Time, req Request) (Request, *audit.Source, *plan, error) {
	req, src, err := e.resolveRemote(ctx, req)
	if err != nil {
		e.auditExec(ctx, start, req, src, nil, nil, err)
		return req, src, nil, err
	}
	p, err := e.planCustom(ctx, req)
	if err != nil {
		e.auditExec(ctx, start, req, src, nil, nil, err)
		return req, src, nil, err
	}
	return req, src, p, nil
}

// ExecuteStream runs one request and delivers its events on the returned
// channel, closed after the final exit (or error) event. Validation errors
// are returned before any event. Cancelling ctx kills the program and
// releases the sandbox; the consumer must drain the channel or cancel ctx.
func (e *Engine) ExecuteStream(ctx context.Context, req Request) (<-chan Event, error) {
	return e.executeStream(ctx, req, nil)
}

func (e *Engine) executeStream(ctx context.Context, req Request, in *Input) (<-chan Event, error) {
	start := time.Now()
	req, src, p, err := e.prepare(ctx, start, req)
	if err != nil {
		return nil, err
	}
	p.input = in
	ch := make(chan Event, 64)
	s := newStreamSink(ctx, ch, e.opts.Secrets)
	go func() {
		defer close(ch)
		res, err := e.execute(ctx, p, s)
		// Streamed output is not collected: the record has no stdout/stderr.
		e.auditExec(ctx, start, req, src, p, res, maskError(e.opts.Secrets, err))
		s.flush()
		var setup *SetupError
		switch {
		case errors.As(err, &setup):
			s.setupFailed(setup)
		case err != nil:
			s.send(Event{Type: EventError, Data: maskString(e.opts.Secrets, err.Error()), Phase: PhaseCode})
			s.send(Event{Type: EventExit, Data: "1", Phase: PhaseCode})
		default:
			if res.TimedOut {
				s.send(Event{Type: EventError, Data: "EXECUTION TIMED OUT", Phase: PhaseCode})
			}
			s.send(Event{Type: EventExit, Data: strconv.Itoa(res.ExitCode), Phase: PhaseCode, Truncated: res.Truncated, OOMKilled: res.OOMKilled})
		}
	}()
	return ch, nil
}

// execute is the shared path of Execute and ExecuteStream, for a validated
// plan. A failed setup script or install ends it with a *SetupError.
func (e *Engine) execute(ctx context.Context, p *plan, s sink) (*Result, error) {
	ctx, leave, err := e.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer leave()
	if err := e.Start(ctx); err != nil {
		return nil, err
	}
	if err := e.host.acquire(ctx); err != nil {
		return nil, err
	}
	defer e.host.release()
	if e.opts.Mode == ModePersistent {
		return e.executePersistent(ctx, p, s)
	}
	// The image is checked (and built when missing) only when a sandbox
	// must be made: a pooled sandbox proves its image exists, and the
	// check costs backend round trips on the warm path.
	sb, err := e.pool.acquire(ctx, p.image, p.rt.Name, func(ctx context.Context) error { return e.resolveImage(ctx, p) })
	if err != nil {
		return nil, err
	}
	e.attachPolicy(ctx, sb, p)
	res, err := e.run(ctx, sb, p, s)
	e.detachPolicy(sb, res)
	if errors.Is(err, errAgentGone) {
		sb.broken = true
	}
	if e.opts.Persist && !sb.broken {
		e.keep(ctx, sb) // left running on purpose; `isol8 cleanup` removes it
		sb.ident.release(false)
	} else {
		e.pool.release(sb)
	}
	return res, err
}

// run executes a plan in a started sandbox: files, installs, setup script,
// then the program.
func (e *Engine) run(ctx context.Context, sb *sandbox, p *plan, s sink) (*Result, error) {
	var inline []agent.File
	var inlineSize int
	for _, f := range p.files {
		if len(f.Data) > inlineFileLimit || inlineSize+len(f.Data) > inlineFileLimit {
			if err := sb.conn.putFile(ctx, f.Path, f.Data, f.Mode); err != nil {
				return nil, fmt.Errorf("Failed to write file %s in container: %w", f.Path, err)
			}
			continue
		}
		inline = append(inline, f)
		inlineSize += len(f.Data)
	}
	if len(p.install) > 0 {
		argv, err := p.rt.InstallArgv(p.install)
		if err != nil {
			return nil, invalid(err)
		}
		env := append(append([]string(nil), p.setupEnv...), p.rt.InstallEnv()...)
		ex := agent.Exec{Argv: argv, Env: env, Dir: agent.SandboxDir,
			TimeoutMs: p.timeout.Milliseconds(), MaxOutput: e.opts.MaxOutputSize, Files: inline}
		inline = nil
		var stderr strings.Builder
		start := time.Now()
		exit, err := sb.conn.exec(ctx, ex, nil, hostDeadline(p.timeout), func(t agent.Type, b []byte) {
			if t == agent.TypeStderr {
				stderr.Write(b)
			}
			e.log.Debug("install output", "sandbox", sb.id, "stream", t.String(), "bytes", len(b))
		})
		if err != nil {
			return nil, fmt.Errorf("package install: %w", err)
		}
		e.log.Debug("install done", "sandbox", sb.id, "runtime", p.rt.Name, "packages", len(p.install),
			"exitCode", exit.ExitCode, "dur", time.Since(start))
		if exit.ExitCode != 0 {
			return nil, newSetupError("install", exit, strings.TrimSpace(stderr.String()), e.opts.Secrets)
		}
	}
	for _, script := range []string{p.imageSetup, p.setup} {
		if strings.TrimSpace(script) == "" {
			continue
		}
		files := append(inline, agent.File{Path: agent.SandboxDir + "/.isol8-setup.sh", Data: []byte(script), Mode: 0o755})
		inline = nil
		ex := agent.Exec{Argv: []string{"bash", agent.SandboxDir + "/.isol8-setup.sh"}, Env: p.setupEnv,
			Dir: agent.SandboxDir, TimeoutMs: p.timeout.Milliseconds(), MaxOutput: e.opts.MaxOutputSize, Files: files}
		var stderr strings.Builder
		exit, err := sb.conn.exec(ctx, ex, nil, hostDeadline(p.timeout), func(t agent.Type, b []byte) {
			if t == agent.TypeStderr {
				stderr.Write(b)
			}
			s.output(PhaseSetup, t, b)
		})
		if err != nil {
			return nil, fmt.Errorf("setup script: %w", err)
		}
		if exit.ExitCode != 0 || exit.TimedOut {
			return nil, newSetupError("setup", exit, strings.TrimSpace(stderr.String()), e.opts.Secrets)
		}
	}

	ex := agent.Exec{Argv: p.argv, Env: p.env, Dir: p.dir, TimeoutMs: p.timeout.Milliseconds(),
		MaxOutput: e.outputCap(s), Files: inline}
	var cg *cgroupSample
	if e.opts.Audit.TrackResources() {
		cg = startCgroupSample(sb.id)
	}
	exit, err := sb.conn.execInput(ctx, ex, p.stdin, p.input, hostDeadline(p.timeout), func(t agent.Type, b []byte) {
		s.output(PhaseCode, t, b)
	})
	p.cgroup = cg.finish()
	if err != nil {
		if errdefs.IsInvalidArgument(err) {
			return nil, e.explainStart(ctx, sb, p, err)
		}
		return nil, fmt.Errorf("execute: %w", err)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	res := &Result{
		ExitCode:    exit.ExitCode,
		DurationMs:  max(exit.DurationMs, 1),
		ExecutionID: uuid.NewString(),
		Runtime:     p.rt.Name,
		Timestamp:   time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		ContainerID: sb.id,
		OOMKilled:   exit.OOMKilled,
		TimedOut:    exit.TimedOut,
		Truncated:   exit.Truncated,
		ResourceUsage: &ResourceUsage{
			CPUTimeMs:    exit.UserCPUMs + exit.SystemCPUMs,
			PeakMemoryMB: float64(exit.MaxRSSKB) / 1024,
			MemoryMB:     float64(exit.MaxRSSKB) / 1024,
		},
	}
	if exit.DurationMs > 0 {
		res.ResourceUsage.CPUPercent = float64(int64(float64(exit.UserCPUMs+exit.SystemCPUMs)/float64(exit.DurationMs)*10000)) / 100
	}
	if exit.TimedOut {
		res.ExitCode = 137
	}
	e.logDone(sb, res, exit)
	if bs, ok := s.(*bufferedSink); ok {
		bs.exit = exit
	}
	if len(p.outputs) > 0 {
		// Missing or unreadable files are omitted; too many bytes fail.
		files, err := e.readOutputs(ctx, sb, p.outputs)
		if err != nil {
			return nil, err
		}
		res.Files = files
	}
	return res, nil
}

// ensureImage builds a missing runtime image on demand.
func (e *Engine) ensureImage(ctx context.Context, name, runtime string) error {
	_, err := e.host.drv.ImageInfo(ctx, name)
	if err == nil {
		return nil
	}
	if !errdefs.IsNotFound(err) {
		return err
	}
	if e.opts.Image != "" || name != image.Name(runtime) {
		return api.NotFoundf("image %s not found", name)
	}
	e.host.imageMu.Lock()
	defer e.host.imageMu.Unlock()
	if err := image.Ensure(ctx, e.host.drv, runtime, image.Options{Progress: e.opts.Progress, Logger: e.log}); err != nil {
		return fmt.Errorf("build image %s: %w", name, err)
	}
	return nil
}

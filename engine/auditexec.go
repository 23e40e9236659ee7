package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/isol8/isol8/audit"
)

// auditExec writes the audit record of one execution (refused, failed or
// run). Everything in it that came from the sandbox or the request's
// secrets is masked. It costs nothing without an audit log.
func (e *Engine) auditExec(ctx context.Context, start time.Time, req Request, src *audit.Source, p *plan, res *Result, err error) {
	l := e.opts.Audit
	if l == nil {
		return
	}
	secrets := e.opts.Secrets
	r := &audit.Record{
		UserID:    req.Metadata["userId"],
		Timestamp: audit.FormatTime(start),
		Runtime:   req.Runtime,
		Mode:      e.opts.Mode,
		ExitCode:  -1,
		Source:    src,
		Limits: &audit.Limits{
			TimeoutMs: e.opts.TimeoutMs, MemoryLimit: e.opts.MemoryLimit, CPULimit: e.opts.CPULimit,
			PidsLimit: e.opts.PidsLimit, MaxOutput: e.opts.MaxOutputSize,
			SandboxSize: e.opts.SandboxSize, TmpSize: e.opts.TmpSize,
		},
		Network: &audit.Network{Mode: e.opts.Network},
	}
	if e.opts.Security != nil {
		r.Limits.Seccomp = e.opts.Security.Seccomp
	}
	if f := e.opts.NetworkFilter; f != nil {
		r.Network.Whitelist, r.Network.Blacklist = f.Whitelist, f.Blacklist
	}
	code := req.Code
	if strings.TrimSpace(req.Cmd) != "" {
		code = req.Cmd
	}
	switch {
	case src != nil:
		if pol, err := e.remotePolicy(); err == nil {
			r.Network.RemoteCodePolicy = pol.String()
		}
	case strings.TrimSpace(req.Cmd) != "":
		r.Source = &audit.Source{Kind: "cmd"}
	case req.FileExtension != "":
		r.Source = &audit.Source{Kind: "file"}
	default:
		r.Source = &audit.Source{Kind: "inline"}
	}
	if src == nil || req.CodeURL == "" { // a refused URL has no code to hash
		sum := sha256.Sum256([]byte(code))
		r.CodeHash = hex.EncodeToString(sum[:])
	}
	if l.IncludeCode() {
		r.Code = maskString(secrets, code)
	}
	if len(req.Metadata) > 0 {
		r.Metadata = make(map[string]string, len(req.Metadata))
		for k, v := range req.Metadata {
			r.Metadata[k] = maskString(secrets, v)
		}
		r.UserID = r.Metadata["userId"]
	}
	if p != nil {
		r.Image = p.image
		r.Limits.TimeoutMs = p.timeout.Milliseconds()
	}
	if err != nil {
		r.Outcome = audit.OutcomeError
		r.Error = maskString(secrets, err.Error())
		var se *SetupError
		if errors.As(err, &se) {
			r.ExitCode, r.TimedOut = se.ExitCode, se.TimedOut
		}
		r.DurationMs = time.Since(start).Milliseconds()
		l.Record(ctx, r)
		return
	}
	r.ExecutionID, r.ContainerID = res.ExecutionID, res.ContainerID
	r.ExitCode, r.DurationMs = res.ExitCode, res.DurationMs
	r.Truncated, r.TimedOut, r.OOMKilled = res.Truncated, res.TimedOut, res.OOMKilled
	switch {
	case res.TimedOut:
		r.Outcome = audit.OutcomeTimeout
	case res.OOMKilled:
		r.Outcome = audit.OutcomeOOM
	case res.ExitCode != 0:
		r.Outcome = audit.OutcomeFailure
	default:
		r.Outcome = audit.OutcomeSuccess
	}
	if l.IncludeOutput() {
		r.Stdout, r.Stderr = res.Stdout, res.Stderr // masked by the sink
	}
	if l.TrackResources() && res.ResourceUsage != nil {
		u := &audit.Usage{CPUTimeMs: res.ResourceUsage.CPUTimeMs, PeakMemoryMB: res.ResourceUsage.PeakMemoryMB}
		if cg := p.cgroup; cg != nil {
			peak := float64(cg.peakMemByte) / (1 << 20)
			u.CgroupPeakMemoryMB = &peak
		}
		r.Resources = u
	}
	l.Record(ctx, r)
}

package engine

import "context"

// KeptSandbox names a container left running by Persist and where it
// lives, so a user can get into it.
type KeptSandbox struct {
	ID        string // container id
	Backend   string // "containerd" or "docker" (BackendInfo.Name)
	Address   string // containerd socket or Docker host
	Namespace string // containerd namespace
}

// keep leaves sb running for inspection: the engine forgets it and tells
// its agent to stay up after the engine's end of the control pipe closes
// (the agent otherwise exits then, taking the container down).
func (e *Engine) keep(ctx context.Context, sb *sandbox) {
	e.host.untrack(sb)
	if err := sb.conn.detach(); err != nil {
		e.log.Warn("keep sandbox: agent did not take the detach", "container", sb.id, "error", err)
	}
	if e.opts.OnKeep != nil {
		kept := KeptSandbox{ID: sb.id}
		if info, err := e.host.drv.Info(context.WithoutCancel(ctx)); err == nil {
			kept.Backend, kept.Address, kept.Namespace = info.Name, info.Address, info.Namespace
		}
		e.opts.OnKeep(kept)
	}
}

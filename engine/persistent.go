package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/containerd/errdefs"

	"github.com/isol8/isol8/agent"
	"github.com/isol8/isol8/runtimes"
)

// errNoContainer is the error of file operations before a persistent
// sandbox exists.
var errNoContainer = errdefs.ErrFailedPrecondition.WithMessage("No active container. Call execute() first in persistent mode.")

// executePersistent runs p in the engine's one sandbox, creating it on the
// first call. Executions on it are serialised.
func (e *Engine) executePersistent(ctx context.Context, p *plan, s sink) (*Result, error) {
	if err := e.pmu.LockCtx(ctx); err != nil {
		return nil, err
	}
	defer e.pmu.Unlock()
	if e.persistent != nil && e.pruntime != p.rt.Name {
		return nil, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf(
			"Cannot switch runtime from %q to %q. Each persistent container supports a single runtime. Create a new Isol8 instance for a different runtime.",
			e.pruntime, p.rt.Name))
	}
	if e.persistent != nil {
		p.imageSetup = "" // the image's setup runs once per container
	}
	if e.persistent == nil {
		if e.work.isClosed() || e.host.work.isClosed() {
			return nil, errStopped
		}
		if err := e.resolveImage(ctx, p); err != nil {
			return nil, err
		}
		sb, err := e.newSandbox(ctx, p.image, p.rt.Name)
		if err != nil {
			return nil, err
		}
		e.attachPolicy(ctx, sb, p) // kept for the sandbox's life
		e.persistent, e.pruntime = sb, p.rt.Name
	}
	sb := e.persistent
	res, err := e.run(ctx, sb, p, s)
	if sb.proxy != nil {
		fillNetwork(res, sb.proxy.TakeReport())
	}
	if errors.Is(err, errAgentGone) {
		// The sandbox is unusable; the next execution starts a new one.
		e.persistent = nil
		e.destroy(ctx, sb)
	}
	return res, err
}

// persistentConn returns the persistent sandbox's agent connection.
func (e *Engine) persistentSandbox() (*sandbox, error) {
	if e.opts.Mode != ModePersistent || e.persistent == nil {
		return nil, errNoContainer
	}
	return e.persistent, nil
}

// PutFile writes data to path in the persistent sandbox as the sandbox user.
// Paths are confined to /sandbox: "..", absolute paths elsewhere and
// symlinks leading out are refused.
func (e *Engine) PutFile(ctx context.Context, path string, data []byte) error {
	clean, err := confinedPath(path)
	if err != nil {
		return err
	}
	ctx, leave, err := e.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	if len(data) > MaxFilesBytes {
		return invalidf("file exceeds the limit of %d bytes", MaxFilesBytes)
	}
	ctx, cancel := fileOpContext(ctx)
	defer cancel()
	if err := e.pmu.LockCtx(ctx); err != nil {
		return err
	}
	defer e.pmu.Unlock()
	sb, err := e.persistentSandbox()
	if err != nil {
		return err
	}
	if err := sb.conn.putFile(ctx, clean, data, 0o644); err != nil {
		return fmt.Errorf("Failed to write file %s in container: %w", path, err)
	}
	return nil
}

// GetFile reads a regular file from the persistent sandbox, with the same
// confinement as PutFile.
func (e *Engine) GetFile(ctx context.Context, path string) ([]byte, error) {
	clean, err := confinedPath(path)
	if err != nil {
		return nil, err
	}
	ctx, leave, err := e.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer leave()
	ctx, cancel := fileOpContext(ctx)
	defer cancel()
	if err := e.pmu.LockCtx(ctx); err != nil {
		return nil, err
	}
	defer e.pmu.Unlock()
	sb, err := e.persistentSandbox()
	if err != nil {
		return nil, err
	}
	data, err := sb.conn.getFile(ctx, clean, maxOutputFile)
	if err != nil {
		return nil, fmt.Errorf("Failed to read file %s in container: %w", path, err)
	}
	return data, nil
}

// confinedPath accepts only paths inside /sandbox.
func confinedPath(p string) (string, error) {
	clean, err := sandboxPath(p)
	if err != nil {
		return "", err
	}
	// sandboxPath admits /sandbox/… and /tmp/…; files here are /sandbox only.
	if !strings.HasPrefix(clean, agent.SandboxDir+"/") {
		return "", invalidf("File path must be inside /sandbox: %q", p)
	}
	return clean, nil
}

// Prewarm fills the pool of each runtime's image to its clean size, building
// missing base images first. It does nothing in persistent mode or when
// pooling is disabled.
func (e *Engine) Prewarm(ctx context.Context, runtimeNames ...string) error {
	ctx, leave, err := e.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	if err := e.Start(ctx); err != nil {
		return err
	}
	if e.opts.Mode == ModePersistent || !e.pool.enabled() {
		return nil
	}
	var errs []error
	for _, name := range runtimeNames {
		rt, err := runtimes.Get(name)
		if err != nil {
			return invalid(err)
		}
		img := rt.Image
		if e.opts.Image != "" {
			img = e.opts.Image
		}
		if err := e.ensureImage(ctx, img, rt.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := e.pool.warm(ctx, img, rt.Name); err != nil {
			errs = append(errs, fmt.Errorf("prewarm %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// dropPersistentWait bounds how long Stop waits for the persistent sandbox's
// lock before it removes the sandbox under the holder's feet.
const dropPersistentWait = 2 * time.Second

// dropPersistent forgets the persistent sandbox for Stop and returns it
// for removal (nil when there is none, or it is kept with Persist). A
// holder that does not let go in time is left alone: the host's Stop
// destroys every live sandbox anyway, which ends the holder's agent
// requests, and the holder then drops the sandbox itself.
func (e *Engine) dropPersistent(ctx context.Context) *sandbox {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dropPersistentWait)
	defer cancel()
	if err := e.pmu.LockCtx(ctx); err != nil {
		e.log.Debug("persistent sandbox busy at stop; removing it anyway", "error", err)
		return nil
	}
	defer e.pmu.Unlock()
	sb := e.persistent
	e.persistent = nil
	if sb != nil && e.opts.Persist {
		e.keep(ctx, sb) // --persist with persistent mode: left running too
		return nil
	}
	return sb
}

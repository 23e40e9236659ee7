package engine

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/isol8/isol8/agent"
	"github.com/isol8/isol8/driver"
	"github.com/isol8/isol8/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// sandbox is one running container with its agent connection.
type sandbox struct {
	id    string
	image string
	sb    driver.Sandbox
	conn  *agentConn
	// broken is set when the agent stopped answering; the sandbox must not
	// be used again.
	broken bool
	ident  *identity
	// netns is the network namespace the driver reports the sandbox runs
	// in (empty while the engine leaves the network to the spec: none and
	// host); the engine enters it to serve inside the sandbox.
	netns string
}

// spec writes the runtime spec for a sandbox of this engine.
func (e *Engine) spec() (*specs.Spec, error) {
	ro := true
	if e.opts.ReadonlyRootFs != nil {
		ro = *e.opts.ReadonlyRootFs
	}
	spec, err := oci.New(
		oci.WithInit(e.initPath),
		oci.WithMemory(e.limits.memory),
		oci.WithCPU(e.opts.CPULimit),
		oci.WithPids(e.opts.PidsLimit+agent.AgentThreads+agent.AgentThreadsSlack), // tightened by fitPids
		oci.WithSandboxTmpfs(e.limits.sandboxSize),
		oci.WithTmpTmpfs(e.limits.tmpSize),
		oci.WithReadonlyRoot(ro),
		oci.WithNetwork(e.opts.Network, ""),
		oci.WithSeccomp(e.profile),
		oci.WithHostname("isol8"),
	)
	if err != nil {
		return nil, err
	}
	// Not grouping sandboxes into one shim (runc v2 "group" annotation): it
	// saved ~20 ms per create here, but a create racing the shutdown of the
	// group's shim failed with "failed to start shim".
	return spec, nil
}

func newSandboxID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "isol8-" + hex.EncodeToString(b[:])
}

// newSandbox creates and starts a sandbox for image and waits for its agent.
func (e *Engine) newSandbox(ctx context.Context, image, runtime string) (_ *sandbox, retErr error) {
	spec, err := e.spec()
	if err != nil {
		return nil, invalid(err)
	}
	id := newSandboxID()
	labels := ownerLabels()
	labels[driver.LabelManaged] = "true"
	if runtime != "" {
		labels[driver.LabelRuntime] = runtime
	}
	ident, err := e.newIdentity(ctx, id, spec)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	dsb, err := e.drv.Create(ctx, driver.CreateRequest{ID: id, Image: image, Spec: spec, Labels: labels})
	e.logStep("sandbox create", id, t0, err)
	ident.created()
	if err != nil {
		ident.release(false) // a failed create may have left processes
		return nil, fmt.Errorf("create sandbox: %w", err)
	}
	sb := &sandbox{id: id, image: image, sb: dsb, ident: ident, netns: dsb.NetNSPath()}
	e.track(sb)
	defer func() {
		if retErr != nil {
			e.destroy(ctx, sb)
		}
	}()
	if err := e.profileOK(ctx); err != nil {
		return nil, err
	}
	t0 = time.Now()
	stdio, err := dsb.Start(ctx)
	e.logStep("sandbox start", id, t0, err)
	if err != nil {
		return nil, fmt.Errorf("start sandbox: %w", err)
	}
	go e.logAgentStderr(id, stdio.Stderr)
	sb.conn = newAgentConn(stdio.Stdin, stdio.Stdout)
	readyCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = sb.conn.waitReady(readyCtx)
	e.logStep("agent ready", id, t0, err)
	if err != nil {
		return nil, fmt.Errorf("start sandbox: %w", err)
	}
	e.fitPids(id)
	return sb, nil
}

func (e *Engine) logAgentStderr(id string, r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		e.log.Debug("agent", "sandbox", id, "line", sc.Text())
	}
}

func (e *Engine) track(sb *sandbox) {
	e.mu.Lock()
	e.live[sb.id] = sb
	e.mu.Unlock()
}

func (e *Engine) untrack(sb *sandbox) {
	e.mu.Lock()
	delete(e.live, sb.id)
	e.mu.Unlock()
}

// destroy removes a sandbox; it runs detached from the caller's context so a
// cancelled request still cleans up.
func (e *Engine) destroy(ctx context.Context, sb *sandbox) {
	e.untrack(sb)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if sb.conn != nil {
		sb.conn.shutdown()
	}
	t0 := time.Now()
	err := sb.sb.Delete(ctx)
	if err != nil {
		e.log.Warn("remove sandbox failed", "sandbox", sb.id, "error", err)
	}
	sb.ident.release(err == nil)
	e.logStep("sandbox destroy", sb.id, t0, nil)
}

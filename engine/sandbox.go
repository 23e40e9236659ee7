package engine

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
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
	labels := map[string]string{driver.LabelManaged: "true", driver.LabelPID: strconv.Itoa(os.Getpid())}
	if runtime != "" {
		labels[driver.LabelRuntime] = runtime
	}
	dsb, err := e.drv.Create(ctx, driver.CreateRequest{ID: id, Image: image, Spec: spec, Labels: labels})
	if err != nil {
		return nil, fmt.Errorf("create sandbox: %w", err)
	}
	sb := &sandbox{id: id, image: image, sb: dsb}
	e.track(sb)
	defer func() {
		if retErr != nil {
			e.destroy(ctx, sb)
		}
	}()
	if err := e.profileOK(ctx); err != nil {
		return nil, err
	}
	stdio, err := dsb.Start(ctx)
	if err != nil {
		return nil, fmt.Errorf("start sandbox: %w", err)
	}
	go e.logAgentStderr(id, stdio.Stderr)
	sb.conn = newAgentConn(stdio.Stdin, stdio.Stdout)
	readyCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := sb.conn.waitReady(readyCtx); err != nil {
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
	if err := sb.sb.Delete(ctx); err != nil {
		e.log.Warn("remove sandbox failed", "sandbox", sb.id, "error", err)
	}
}

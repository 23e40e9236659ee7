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
	"github.com/isol8/isol8/proxy"
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
	// proxy serves the filtered network inside the sandbox's namespace
	// (nil for other modes).
	proxy *proxy.Server
}

// spec writes the runtime spec for a sandbox of shape s.
func (h *Host) spec(s *shape) (*specs.Spec, error) {
	spec, err := oci.New(
		oci.WithInit(h.initPath),
		oci.WithMemory(s.limits.memory),
		oci.WithCPU(s.cpu),
		oci.WithPids(s.pids+agent.AgentThreads+agent.AgentThreadsSlack), // tightened by fitPids
		oci.WithSandboxTmpfs(s.limits.sandboxSize),
		oci.WithTmpTmpfs(s.limits.tmpSize),
		oci.WithReadonlyRoot(s.readonly),
		oci.WithNetwork(specNetwork(s.network), ""),
		oci.WithSeccomp(s.profile),
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

// newSandbox creates and starts a sandbox of the view's shape for image and
// waits for its agent.
func (e *Engine) newSandbox(ctx context.Context, image, runtime string) (*sandbox, error) {
	return e.host.newSandbox(ctx, e.shape, image, runtime)
}

// newSandbox creates and starts a sandbox of shape s for image and waits
// for its agent.
func (h *Host) newSandbox(ctx context.Context, s *shape, image, runtime string) (_ *sandbox, retErr error) {
	spec, err := h.spec(s)
	if err != nil {
		return nil, invalid(err)
	}
	id := newSandboxID()
	labels := ownerLabels()
	labels[driver.LabelManaged] = "true"
	if runtime != "" {
		labels[driver.LabelRuntime] = runtime
	}
	ident, err := h.newIdentity(ctx, id, spec)
	if err != nil {
		return nil, err
	}
	if s.buildDir != "" {
		if err := bindBuildDir(spec, s.buildDir); err != nil {
			ident.release(false)
			return nil, err
		}
	}
	t0 := time.Now()
	dsb, err := h.drv.Create(ctx, driver.CreateRequest{ID: id, Image: image, Spec: spec, Labels: labels, Network: attachment(s.network)})
	h.logStep("sandbox create", id, t0, err)
	ident.created()
	if err != nil {
		ident.release(false) // a failed create may have left processes
		return nil, fmt.Errorf("create sandbox: %w", err)
	}
	sb := &sandbox{id: id, image: image, sb: dsb, ident: ident, netns: dsb.NetNSPath()}
	h.track(sb)
	defer func() {
		if retErr != nil {
			h.destroy(ctx, sb)
		}
	}()
	if err := s.verdict.ok(ctx); err != nil {
		return nil, err
	}
	if s.network == NetworkFiltered {
		t0 = time.Now()
		err := h.serveProxy(ctx, sb)
		h.logStep("proxy listen", id, t0, err)
		if err != nil {
			return nil, err
		}
	}
	t0 = time.Now()
	stdio, err := dsb.Start(ctx)
	h.logStep("sandbox start", id, t0, err)
	if err != nil {
		return nil, fmt.Errorf("start sandbox: %w", err)
	}
	go h.logAgentStderr(id, stdio.Stderr)
	sb.conn = newAgentConn(stdio.Stdin, stdio.Stdout)
	readyCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = sb.conn.waitReady(readyCtx)
	h.logStep("agent ready", id, t0, err)
	if err != nil {
		return nil, fmt.Errorf("start sandbox: %w", err)
	}
	h.fitPids(dsb, s.pids)
	return sb, nil
}

func (h *Host) logAgentStderr(id string, r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		h.log.Debug("agent", "sandbox", id, "line", sc.Text())
	}
}

func (h *Host) track(sb *sandbox) {
	h.mu.Lock()
	h.live[sb.id] = sb
	h.mu.Unlock()
}

func (h *Host) untrack(sb *sandbox) {
	h.mu.Lock()
	delete(h.live, sb.id)
	h.mu.Unlock()
}

// destroy removes a sandbox through the view's host.
func (e *Engine) destroy(ctx context.Context, sb *sandbox) { e.host.destroy(ctx, sb) }

// destroy removes a sandbox; it runs detached from the caller's context so a
// cancelled request still cleans up.
func (h *Host) destroy(ctx context.Context, sb *sandbox) {
	h.untrack(sb)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if sb.conn != nil {
		sb.conn.shutdown()
	}
	if sb.proxy != nil {
		_ = sb.proxy.Close()
	}
	t0 := time.Now()
	err := sb.sb.Delete(ctx)
	if err != nil {
		h.log.Warn("remove sandbox failed", "sandbox", sb.id, "error", err)
	}
	sb.ident.release(err == nil)
	h.logStep("sandbox destroy", sb.id, t0, nil)
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/isol8/isol8/agent"
	"github.com/isol8/isol8/api"
)

// errAgentGone is returned when the agent's stream ended or broke; the
// sandbox must then be destroyed.
var errAgentGone = errors.New("sandbox agent stopped answering")

// agentConn is the engine's side of one sandbox's agent protocol stream.
// Requests are multiplexed by id; a reader goroutine routes each frame to its
// request's channel.
type agentConn struct {
	w     *agent.Writer
	stdin io.Closer

	mu      sync.Mutex
	nextID  uint32
	pending map[uint32]*request
	err     error // set once the stream ends
	done    chan struct{}
}

func newAgentConn(stdin io.WriteCloser, stdout io.Reader) *agentConn {
	c := &agentConn{
		w:       agent.NewWriter(stdin),
		stdin:   stdin,
		pending: map[uint32]*request{0: newRequest()},
		done:    make(chan struct{}),
	}
	go c.readLoop(agent.NewReader(stdout))
	return c
}

func (c *agentConn) readLoop(r *agent.Reader) {
	defer close(c.done)
	for {
		f, err := r.Read()
		if err != nil {
			c.mu.Lock()
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				c.err = errAgentGone
			} else {
				c.err = fmt.Errorf("%w: %v", errAgentGone, err)
			}
			c.mu.Unlock()
			return
		}
		c.mu.Lock()
		req := c.pending[f.ID]
		c.mu.Unlock()
		if req == nil {
			continue // a late frame of an abandoned request
		}
		// Blocking here is the backpressure that slows a fast writer down
		// to the consumer's pace; a released request never blocks.
		select {
		case req.ch <- f:
		case <-req.gone:
		}
	}
}

// request is one awaited request: its frames and a signal that nobody
// waits for them any more.
type request struct {
	ch   chan agent.Frame
	gone chan struct{}
}

func newRequest() *request {
	return &request{ch: make(chan agent.Frame, 64), gone: make(chan struct{})}
}

// open registers a new request id.
func (c *agentConn) open() (uint32, chan agent.Frame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	req := newRequest()
	c.pending[c.nextID] = req
	return c.nextID, req.ch
}

func (c *agentConn) release(id uint32) {
	c.mu.Lock()
	req := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if req != nil {
		close(req.gone)
	}
}

func (c *agentConn) streamErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	return errAgentGone
}

// next waits for the next frame of a request.
func (c *agentConn) next(ctx context.Context, ch chan agent.Frame) (agent.Frame, error) {
	select {
	case f := <-ch:
		return f, nil
	case <-c.done:
		// Drain what arrived before the stream ended.
		select {
		case f := <-ch:
			return f, nil
		default:
		}
		return agent.Frame{}, c.streamErr()
	case <-ctx.Done():
		return agent.Frame{}, ctx.Err()
	}
}

// waitReady waits for the agent's greeting.
func (c *agentConn) waitReady(ctx context.Context) error {
	c.mu.Lock()
	req := c.pending[0]
	c.mu.Unlock()
	f, err := c.next(ctx, req.ch)
	c.release(0)
	if err != nil {
		return fmt.Errorf("wait for sandbox agent: %w", err)
	}
	if f.Type != agent.TypeReady {
		return fmt.Errorf("wait for sandbox agent: unexpected %s frame", f.Type)
	}
	var r agent.Ready
	if err := f.Decode(&r); err != nil {
		return err
	}
	if r.Version != agent.ProtocolVersion {
		return fmt.Errorf("sandbox agent speaks protocol %d, engine %d", r.Version, agent.ProtocolVersion)
	}
	return nil
}

// outputFunc receives output chunks of an execution as they arrive.
type outputFunc func(stream agent.Type, data []byte)

// exec runs one process. Cancelling ctx kills the process (the agent then
// still reports its exit). hostDeadline bounds how long the agent may take to
// report at all; past it the sandbox is considered broken.
func (c *agentConn) exec(ctx context.Context, req agent.Exec, stdin []byte, hostDeadline time.Duration, out outputFunc) (agent.Exit, error) {
	return c.execInput(ctx, req, stdin, nil, hostDeadline, out)
}

// execInput is exec with an optional Input whose stdin data and signals
// are forwarded while the process runs; stdin then stays open until the
// Input closes it.
func (c *agentConn) execInput(ctx context.Context, req agent.Exec, stdin []byte, in *Input, hostDeadline time.Duration, out outputFunc) (agent.Exit, error) {
	id, ch := c.open()
	defer c.release(id)
	req.Stdin = stdin != nil || in != nil
	if err := c.w.WriteJSON(agent.TypeExec, id, req); err != nil {
		return agent.Exit{}, fmt.Errorf("%w: %v", errAgentGone, err)
	}
	if len(stdin) > 0 {
		// The agent queues stdin, so this never waits on the program.
		if err := c.w.Write(agent.TypeStdin, id, stdin); err != nil {
			return agent.Exit{}, fmt.Errorf("%w: %v", errAgentGone, err)
		}
	}
	if in != nil {
		stop := make(chan struct{})
		defer func() { close(stop); in.finish() }()
		go c.pump(id, in, stop)
	} else if stdin != nil {
		if err := c.w.Write(agent.TypeStdinEOF, id, nil); err != nil {
			return agent.Exit{}, fmt.Errorf("%w: %v", errAgentGone, err)
		}
	}
	deadline := time.NewTimer(hostDeadline)
	defer deadline.Stop()
	cancelled := ctx.Done()
	for {
		var f agent.Frame
		select {
		case f = <-ch:
		case <-c.done:
			select {
			case f = <-ch:
			default:
				return agent.Exit{}, c.streamErr()
			}
		case <-cancelled:
			cancelled = nil // ask once, then keep waiting for the exit
			_ = c.w.WriteJSON(agent.TypeSignal, id, agent.Signal{Signal: "KILL"})
			deadline.Reset(5 * time.Second)
			continue
		case <-deadline.C:
			return agent.Exit{}, fmt.Errorf("%w: no exit report within %s", errAgentGone, hostDeadline)
		}
		switch f.Type {
		case agent.TypeStdout, agent.TypeStderr:
			if out != nil {
				out(f.Type, f.Payload)
			}
		case agent.TypeExit:
			var e agent.Exit
			if err := f.Decode(&e); err != nil {
				return agent.Exit{}, err
			}
			return e, nil
		case agent.TypeError:
			return agent.Exit{}, agentError(f)
		default:
			return agent.Exit{}, fmt.Errorf("%w: unexpected %s frame", errAgentGone, f.Type)
		}
	}
}

func agentError(f agent.Frame) error {
	var e agent.Error
	if err := f.Decode(&e); err != nil {
		return err
	}
	switch e.Code {
	case "invalid":
		return api.InvalidArgument(errors.New(e.Message))
	case "notfound":
		return api.NotFound(errors.New(e.Message))
	}
	return errors.New(e.Message)
}

// putFile writes data to path inside the sandbox as the sandbox user.
func (c *agentConn) putFile(ctx context.Context, path string, data []byte, mode uint32) error {
	ctx, cancel := fileOpContext(ctx)
	defer cancel()
	id, ch := c.open()
	defer c.release(id)
	if err := c.w.WriteJSON(agent.TypePutFile, id, agent.PutFile{Path: path, Mode: mode}); err != nil {
		return fmt.Errorf("%w: %v", errAgentGone, err)
	}
	if len(data) > 0 {
		if err := c.w.Write(agent.TypeFileData, id, data); err != nil {
			return fmt.Errorf("%w: %v", errAgentGone, err)
		}
	}
	if err := c.w.Write(agent.TypeFileEOF, id, nil); err != nil {
		return fmt.Errorf("%w: %v", errAgentGone, err)
	}
	return c.awaitOK(ctx, ch)
}

// getFile reads a regular file from the sandbox.
func (c *agentConn) getFile(ctx context.Context, path string, maxBytes int64) ([]byte, error) {
	ctx, cancel := fileOpContext(ctx)
	defer cancel()
	id, ch := c.open()
	defer c.release(id)
	if err := c.w.WriteJSON(agent.TypeGetFile, id, agent.GetFile{Path: path, MaxBytes: maxBytes}); err != nil {
		return nil, fmt.Errorf("%w: %v", errAgentGone, err)
	}
	var data []byte
	for {
		f, err := c.next(ctx, ch)
		if err != nil {
			return nil, err
		}
		switch f.Type {
		case agent.TypeFileData:
			data = append(data, f.Payload...)
		case agent.TypeFileEOF:
			if data == nil {
				data = []byte{}
			}
			return data, nil
		case agent.TypeError:
			return nil, agentError(f)
		default:
			return nil, fmt.Errorf("%w: unexpected %s frame", errAgentGone, f.Type)
		}
	}
}

// reset asks the agent to make the sandbox fresh. It fails with a
// *resetCheckError when any item of the agent's checklist failed (or is
// missing from its report): such a sandbox must not be reused.
func (c *agentConn) reset(ctx context.Context) (agent.ResetReport, error) {
	id, ch := c.open()
	defer c.release(id)
	if err := c.w.WriteJSON(agent.TypeReset, id, agent.Reset{}); err != nil {
		return agent.ResetReport{}, fmt.Errorf("%w: %v", errAgentGone, err)
	}
	f, err := c.next(ctx, ch)
	if err != nil {
		return agent.ResetReport{}, err
	}
	switch f.Type {
	case agent.TypeOK:
	case agent.TypeError:
		return agent.ResetReport{}, agentError(f)
	default:
		return agent.ResetReport{}, fmt.Errorf("%w: unexpected %s frame", errAgentGone, f.Type)
	}
	var rep agent.ResetReport
	if err := f.Decode(&rep); err != nil {
		return agent.ResetReport{}, fmt.Errorf("reset report: %w", err)
	}
	if item := rep.Failed(); item != nil {
		return rep, &resetCheckError{item: item.Name, detail: item.Detail}
	}
	return rep, nil
}

// resetCheckError is a reset whose checklist item failed.
type resetCheckError struct {
	item, detail string
}

func (e *resetCheckError) Error() string {
	return fmt.Sprintf("reset check %s failed: %s", e.item, e.detail)
}

// awaitOK waits for a request's answer: TypeOK, or TypeError as an error.
func (c *agentConn) awaitOK(ctx context.Context, ch chan agent.Frame) error {
	f, err := c.next(ctx, ch)
	if err != nil {
		return err
	}
	switch f.Type {
	case agent.TypeOK:
		return nil
	case agent.TypeError:
		return agentError(f)
	}
	return fmt.Errorf("%w: unexpected %s frame", errAgentGone, f.Type)
}

// shutdown asks the agent to exit and closes our end of its stdin.
func (c *agentConn) shutdown() {
	_ = c.w.Write(agent.TypeShutdown, 0, nil)
	_ = c.stdin.Close()
}

// detach tells the agent to keep running after our end of its stdin closes.
func (c *agentConn) detach() error { return c.w.Write(agent.TypeDetach, 0, nil) }

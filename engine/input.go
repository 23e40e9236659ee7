package engine

import (
	"context"
	"sync"

	"github.com/isol8/isol8/agent"
)

// Input feeds a streamed execution while it runs: stdin data as it
// arrives, the end of stdin, and signals to the program's process group.
// What is sent before the program starts is queued and delivered when it
// does; what is sent after the execution ended is dropped. One Input
// serves one execution.
type Input struct {
	ch   chan inputMsg
	done chan struct{}
	once sync.Once

	mu    sync.Mutex
	bytes int // stdin bytes accepted so far (bounded by MaxStdinBytes)
}

type inputMsg struct {
	data   []byte
	eof    bool
	signal string // agent signal name: INT, TERM, KILL
}

// NewInput returns an Input for ExecuteInteractive.
func NewInput() *Input {
	return &Input{ch: make(chan inputMsg, 64), done: make(chan struct{})}
}

// Write queues data for the program's stdin. It waits while the queue is
// full (the agent queues stdin, so it drains as fast as the program
// starts) and gives up when ctx ends; after the execution ended it returns
// nil and drops data. An execution takes at most MaxStdinBytes of stdin
// in all (the agent holds what the program has not read yet).
func (in *Input) Write(ctx context.Context, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	in.mu.Lock()
	if in.bytes+len(data) > MaxStdinBytes {
		in.mu.Unlock()
		return invalidf("stdin exceeds the limit of %d bytes", MaxStdinBytes)
	}
	in.bytes += len(data)
	in.mu.Unlock()
	return in.send(ctx, inputMsg{data: append([]byte(nil), data...)})
}

// CloseStdin ends the program's stdin (it reads EOF after the queued data).
func (in *Input) CloseStdin(ctx context.Context) error { return in.send(ctx, inputMsg{eof: true}) }

// Signal sends SIGINT, SIGTERM or SIGKILL to the program's process group.
// Other names are refused with an invalid-argument error.
func (in *Input) Signal(ctx context.Context, sig string) error {
	name, ok := map[string]string{"SIGINT": "INT", "SIGTERM": "TERM", "SIGKILL": "KILL"}[sig]
	if !ok {
		return invalidf("Unsupported signal: %q. Expected SIGINT, SIGTERM or SIGKILL", sig)
	}
	return in.send(ctx, inputMsg{signal: name})
}

func (in *Input) send(ctx context.Context, m inputMsg) error {
	select {
	case <-in.done:
		return nil
	default:
	}
	select {
	case in.ch <- m:
		return nil
	case <-in.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// finish marks the execution ended: later sends are dropped.
func (in *Input) finish() { in.once.Do(func() { close(in.done) }) }

// pump forwards in's messages to request id until stop closes.
func (c *agentConn) pump(id uint32, in *Input, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case m := <-in.ch:
			var err error
			switch {
			case m.signal != "":
				err = c.w.WriteJSON(agent.TypeSignal, id, agent.Signal{Signal: m.signal})
			case m.eof:
				err = c.w.Write(agent.TypeStdinEOF, id, nil)
			default:
				err = c.w.Write(agent.TypeStdin, id, m.data)
			}
			if err != nil {
				return
			}
		}
	}
}

// ExecuteInteractive is ExecuteStream with an Input: the program's stdin
// stays open after req.Stdin for what in delivers, until in.CloseStdin or
// the end of the execution, and in's signals reach its process group.
// Install and setup phases never read in.
func (e *Engine) ExecuteInteractive(ctx context.Context, req Request, in *Input) (<-chan Event, error) {
	return e.executeStream(ctx, req, in)
}

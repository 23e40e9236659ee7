package engine

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/isol8/isol8/agent"
)

// scriptedAgent is the agent's end of the protocol over pipes: it greets,
// then hands each frame to handle. Pure protocol logic; the real agent is
// exercised by the integration tests.
type scriptedAgent struct {
	w      *agent.Writer
	frames chan agent.Frame
	stdout *io.PipeWriter
}

func newScriptedAgent(t *testing.T) (*agentConn, *scriptedAgent) {
	t.Helper()
	toAgentR, toAgentW := io.Pipe()
	fromAgentR, fromAgentW := io.Pipe()
	a := &scriptedAgent{w: agent.NewWriter(fromAgentW), frames: make(chan agent.Frame, 16), stdout: fromAgentW}
	go func() {
		r := agent.NewReader(toAgentR)
		for {
			f, err := r.Read()
			if err != nil {
				close(a.frames)
				return
			}
			a.frames <- f
		}
	}()
	c := newAgentConn(toAgentW, fromAgentR)
	t.Cleanup(func() { toAgentW.Close(); fromAgentW.Close() })
	go func() { _ = a.w.WriteJSON(agent.TypeReady, 0, agent.Ready{Version: agent.ProtocolVersion}) }()
	if err := c.waitReady(t.Context()); err != nil {
		t.Fatalf("waitReady: %v", err)
	}
	return c, a
}

// next returns the engine's next frame. It runs in the fake agent's
// goroutine, so it reports with t.Error, never t.Fatal.
func (a *scriptedAgent) next(t *testing.T) agent.Frame {
	t.Helper()
	select {
	case f, ok := <-a.frames:
		if !ok {
			t.Error("engine closed the connection")
		}
		return f
	case <-time.After(10 * time.Second):
		t.Error("no frame from the engine")
	}
	return agent.Frame{}
}

func TestAgentConnExecStreamsThenExits(t *testing.T) {
	c, a := newScriptedAgent(t)
	go func() {
		f := a.next(t)
		if f.Type != agent.TypeExec {
			t.Errorf("first frame %s", f.Type)
		}
		if s := a.next(t); s.Type != agent.TypeStdin || string(s.Payload) != "in" {
			t.Errorf("stdin frame %s %q", s.Type, s.Payload)
		}
		if eof := a.next(t); eof.Type != agent.TypeStdinEOF {
			t.Errorf("stdin EOF frame %s", eof.Type)
		}
		_ = a.w.Write(agent.TypeStdout, f.ID, []byte("out1 "))
		_ = a.w.Write(agent.TypeStderr, f.ID, []byte("err"))
		_ = a.w.Write(agent.TypeStdout, f.ID, []byte("out2"))
		_ = a.w.WriteJSON(agent.TypeExit, f.ID, agent.Exit{ExitCode: 3})
	}()
	var got []string
	exit, err := c.exec(t.Context(), agent.Exec{Argv: []string{"x"}}, []byte("in"), 10*time.Second,
		func(s agent.Type, b []byte) { got = append(got, s.String()+":"+string(b)) })
	if err != nil || exit.ExitCode != 3 {
		t.Fatalf("exec = %+v, %v", exit, err)
	}
	want := []string{"stdout:out1 ", "stderr:err", "stdout:out2"}
	if len(got) != len(want) {
		t.Fatalf("output %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("output %q, want %q", got, want)
		}
	}
}

// Cancelling asks the agent to kill the program once, then waits for its
// exit report.
func TestAgentConnCancelSendsOneKill(t *testing.T) {
	c, a := newScriptedAgent(t)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		f := a.next(t)
		cancel()
		sig := a.next(t)
		var s agent.Signal
		if sig.Type != agent.TypeSignal || sig.Decode(&s) != nil || s.Signal != "KILL" || sig.ID != f.ID {
			t.Errorf("after cancel: %s %q", sig.Type, sig.Payload)
		}
		_ = a.w.WriteJSON(agent.TypeExit, f.ID, agent.Exit{ExitCode: 137, Signal: "KILL"})
	}()
	exit, err := c.exec(ctx, agent.Exec{Argv: []string{"sleep"}}, nil, 10*time.Second, nil)
	if err != nil || exit.ExitCode != 137 {
		t.Fatalf("exec = %+v, %v", exit, err)
	}
}

// An agent that dies mid-execution or never reports is a broken sandbox
// (errAgentGone), never a hang.
func TestAgentConnAgentGone(t *testing.T) {
	t.Run("stream closes", func(t *testing.T) {
		c, a := newScriptedAgent(t)
		go func() {
			a.next(t)
			a.stdout.Close()
		}()
		_, err := c.exec(t.Context(), agent.Exec{Argv: []string{"x"}}, nil, 10*time.Second, nil)
		if !errors.Is(err, errAgentGone) {
			t.Fatalf("err = %v, want errAgentGone", err)
		}
	})
	t.Run("no report before the host deadline", func(t *testing.T) {
		c, a := newScriptedAgent(t)
		go func() { a.next(t) }()
		start := time.Now()
		_, err := c.exec(t.Context(), agent.Exec{Argv: []string{"x"}}, nil, 100*time.Millisecond, nil)
		if !errors.Is(err, errAgentGone) || time.Since(start) > 5*time.Second {
			t.Fatalf("err = %v after %v, want errAgentGone after ~100ms", err, time.Since(start))
		}
	})
}

// Frames of concurrent requests are routed by id.
func TestAgentConnDemultiplexes(t *testing.T) {
	c, a := newScriptedAgent(t)
	const n = 8
	go func() {
		var ids []uint32
		for range n {
			ids = append(ids, a.next(t).ID)
		}
		// Answer in reverse order, interleaving output.
		for i := len(ids) - 1; i >= 0; i-- {
			_ = a.w.Write(agent.TypeStdout, ids[i], []byte{byte('a' + i)})
		}
		for i := len(ids) - 1; i >= 0; i-- {
			_ = a.w.WriteJSON(agent.TypeExit, ids[i], agent.Exit{ExitCode: int(ids[i])})
		}
	}()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out []byte
			exit, err := c.exec(t.Context(), agent.Exec{Argv: []string{"x"}}, nil, 10*time.Second,
				func(_ agent.Type, b []byte) { out = append(out, b...) })
			if err != nil || len(out) != 1 || exit.ExitCode == 0 {
				t.Errorf("exec = %+v, %q, %v", exit, out, err)
			}
		}()
	}
	wg.Wait()
}

package engine

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/isol8/isol8/agent"
)

// bufferedSink collects the main run's output for a Result.
type bufferedSink struct {
	stdout, stderr collector
	exit           agent.Exit
}

func newBufferedSink(secrets map[string]string) *bufferedSink {
	return &bufferedSink{
		stdout: collector{m: newMasker(secrets)},
		stderr: collector{m: newMasker(secrets)},
	}
}

func (b *bufferedSink) output(phase string, stream agent.Type, data []byte) {
	if phase != PhaseCode {
		return // buffered mode keeps only the setup's stderr, for its error
	}
	if stream == agent.TypeStdout {
		b.stdout.write(data)
	} else {
		b.stderr.write(data)
	}
}

// SetupError is a setup script or package install that failed: the
// execution ended there and the program did not run. Its message is the
// user-facing one; Stderr is already masked.
type SetupError struct {
	Kind     string // "setup" or "install"
	ExitCode int    // 137 after a timeout
	TimedOut bool
	Stderr   string
}

func newSetupError(kind string, exit agent.Exit, stderr string, secrets map[string]string) *SetupError {
	code := exit.ExitCode
	if exit.TimedOut {
		code = 137
	}
	return &SetupError{Kind: kind, ExitCode: code, TimedOut: exit.TimedOut, Stderr: maskString(secrets, stderr)}
}

func (e *SetupError) Error() string {
	switch {
	case e.Kind == "install" && e.TimedOut:
		return strings.TrimSpace(fmt.Sprintf("Package install failed (exit code %d): PACKAGE INSTALL TIMED OUT\n%s", e.ExitCode, e.Stderr))
	case e.Kind == "install":
		return fmt.Sprintf("Package install failed (exit code %d): %s", e.ExitCode, e.Stderr)
	case e.TimedOut:
		return fmt.Sprintf("Setup script failed (exit code %d): SETUP SCRIPT TIMED OUT", e.ExitCode)
	default:
		return fmt.Sprintf("Setup script failed (exit code %d): %s", e.ExitCode, e.Stderr)
	}
}

// fill puts the collected output into res.
func (b *bufferedSink) fill(res *Result, limit int64) {
	outCut := b.exit.StdoutBytes > limit
	errCut := b.exit.StderrBytes > limit
	res.Stdout = b.stdout.finish(outCut, b.exit.StdoutBytes, limit)
	stderr := b.stderr.finish(errCut, b.exit.StderrBytes, limit)
	if res.TimedOut {
		stderr = strings.TrimLeft(stderr+timeoutMarker, "\n")
	}
	res.Stderr = trimRight(stderr)
	res.Truncated = outCut || errCut || b.exit.Truncated
}

// streamSink turns output into events as it arrives.
type streamSink struct {
	ctx     context.Context
	ch      chan<- Event
	secrets map[string]string
	streams map[string]*streamState
	order   []string
}

type streamState struct {
	phase string
	typ   string
	m     *masker
	u     utf8Carry
}

func newStreamSink(ctx context.Context, ch chan<- Event, secrets map[string]string) *streamSink {
	return &streamSink{ctx: ctx, ch: ch, secrets: secrets, streams: map[string]*streamState{}}
}

// send delivers an event unless the consumer went away (ctx cancelled).
func (s *streamSink) send(ev Event) {
	select {
	case s.ch <- ev:
	case <-s.ctx.Done():
	}
}

func (s *streamSink) output(phase string, stream agent.Type, data []byte) {
	typ := EventStdout
	if stream == agent.TypeStderr {
		typ = EventStderr
	}
	if phase == PhaseCode {
		s.flushPhase(PhaseSetup)
	}
	key := phase + "/" + typ
	st := s.streams[key]
	if st == nil {
		st = &streamState{phase: phase, typ: typ, m: newMasker(s.secrets)}
		s.streams[key] = st
		s.order = append(s.order, key)
	}
	if out := st.u.write(st.m.write(data)); len(out) > 0 {
		s.send(Event{Type: typ, Data: string(out), Phase: phase})
	}
}

func (s *streamSink) flushPhase(phase string) {
	for _, key := range s.order {
		st := s.streams[key]
		if st.phase != phase {
			continue
		}
		out := append(st.u.write(st.m.flush(false)), st.u.flush()...)
		if len(out) > 0 {
			s.send(Event{Type: st.typ, Data: string(out), Phase: phase})
		}
	}
}

func (s *streamSink) flush() {
	s.flushPhase(PhaseSetup)
	s.flushPhase(PhaseCode)
}

// setupFailed ends a stream whose setup or install step failed.
func (s *streamSink) setupFailed(se *SetupError) {
	s.flushPhase(PhaseSetup)
	msg := fmt.Sprintf("Setup script failed (exit code %d)", se.ExitCode)
	switch {
	case se.TimedOut:
		msg = "SETUP SCRIPT TIMED OUT"
	case se.Kind == "install":
		msg = se.Error()
	}
	s.send(Event{Type: EventError, Data: msg, Phase: PhaseSetup})
	s.send(Event{Type: EventExit, Data: strconv.Itoa(se.ExitCode), Phase: PhaseSetup})
}

func trimRight(s string) string {
	i := len(s)
	for i > 0 && (s[i-1] == ' ' || s[i-1] == '\n' || s[i-1] == '\t' || s[i-1] == '\r') {
		i--
	}
	return s[:i]
}

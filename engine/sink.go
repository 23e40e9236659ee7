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
	err            error // a failed setup or install step
	secrets        map[string]string
}

func newBufferedSink(secrets map[string]string) *bufferedSink {
	return &bufferedSink{
		secrets: secrets,
		stdout:  collector{m: newMasker(secrets)},
		stderr:  collector{m: newMasker(secrets)},
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

func (b *bufferedSink) setupFailed(kind string, exit agent.Exit, stderr string) {
	b.err = setupError(kind, exit, maskString(b.secrets, stderr))
}

// setupError is the error of a failed setup script or package install.
func setupError(kind string, exit agent.Exit, stderr string) error {
	code := exit.ExitCode
	if exit.TimedOut {
		code = 137
	}
	switch kind {
	case "install":
		return fmt.Errorf("Package install failed (exit code %d): %s", code, stderr)
	default:
		if exit.TimedOut {
			return fmt.Errorf("Setup script failed (exit code %d): SETUP SCRIPT TIMED OUT", code)
		}
		return fmt.Errorf("Setup script failed (exit code %d): %s", code, stderr)
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

func (s *streamSink) setupFailed(kind string, exit agent.Exit, stderr string) {
	s.flushPhase(PhaseSetup)
	code := exit.ExitCode
	msg := fmt.Sprintf("Setup script failed (exit code %d)", code)
	if kind == "install" {
		msg = setupError(kind, exit, maskString(s.secrets, stderr)).Error()
	}
	if exit.TimedOut {
		code = 137
		msg = "SETUP SCRIPT TIMED OUT"
	}
	s.send(Event{Type: EventError, Data: msg, Phase: PhaseSetup})
	s.send(Event{Type: EventExit, Data: strconv.Itoa(code), Phase: PhaseSetup})
}

func trimRight(s string) string {
	i := len(s)
	for i > 0 && (s[i-1] == ' ' || s[i-1] == '\n' || s[i-1] == '\t' || s[i-1] == '\r') {
		i--
	}
	return s[:i]
}

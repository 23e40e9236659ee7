package engine

import (
	"context"
	"fmt"
	"log/slog"
)

// Every text isol8 builds from what a sandbox printed (setup and install
// errors, error events, log lines) goes through these helpers, so a secret
// never leaves in clear through isol8's own messages. Output streams are
// masked by the streaming masker in output.go.

// maskString replaces every secret value in s with "***".
func maskString(secrets map[string]string, s string) string {
	if len(secrets) == 0 || s == "" {
		return s
	}
	return string(newMasker(secrets).maskAll([]byte(s)))
}

// maskedError shows a masked message and keeps the original error in its
// chain, so errdefs classes and errors.Is still work.
type maskedError struct {
	msg string
	err error
}

func (e *maskedError) Error() string { return e.msg }
func (e *maskedError) Unwrap() error { return e.err }

// maskError returns err with every secret value masked in its message.
func maskError(secrets map[string]string, err error) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	msg := err.Error()
	if masked := maskString(secrets, msg); masked != msg {
		return &maskedError{msg: masked, err: err}
	}
	return err
}

// maskingHandler masks secret values in log messages and attributes, at
// every level, before the wrapped handler sees them.
type maskingHandler struct {
	next    slog.Handler
	secrets map[string]string
}

// newMaskingLogger wraps log so that nothing it writes carries a secret.
func newMaskingLogger(log *slog.Logger, secrets map[string]string) *slog.Logger {
	if len(secrets) == 0 {
		return log
	}
	return slog.New(&maskingHandler{next: log.Handler(), secrets: secrets})
}

func (h *maskingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *maskingHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, maskString(h.secrets, r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *maskingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	masked := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		masked[i] = h.attr(a)
	}
	return &maskingHandler{next: h.next.WithAttrs(masked), secrets: h.secrets}
}

func (h *maskingHandler) WithGroup(name string) slog.Handler {
	return &maskingHandler{next: h.next.WithGroup(name), secrets: h.secrets}
}

func (h *maskingHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, maskString(h.secrets, v.String()))
	case slog.KindGroup:
		group := v.Group()
		masked := make([]any, len(group))
		for i, g := range group {
			masked[i] = h.attr(g)
		}
		return slog.Group(a.Key, masked...)
	case slog.KindAny:
		text := fmt.Sprint(v.Any())
		if err, ok := v.Any().(error); ok {
			text = err.Error()
		}
		if masked := maskString(h.secrets, text); masked != text {
			return slog.String(a.Key, masked)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

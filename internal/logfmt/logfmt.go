// Package logfmt is the slog handler of isol8's human logs: one line per
// record, "[DEBUG] <message> key=value ..." (and "[INFO]" the same way) for
// people grepping debug output, and "[WARN] <message> (key: value; ...)" /
// "[ERR] ..." for what users must read, never in key=value form. The words of each message are stable so
// people can grep for them. The CLI uses it for --debug and the server
// reuses it for its request, session and prune logs.
package logfmt

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Handler writes records as single prefixed lines. It is safe for
// concurrent use; handlers derived with WithAttrs/WithGroup share the
// writer's lock so lines never interleave.
type Handler struct {
	w     io.Writer
	mu    *sync.Mutex
	level slog.Leveler
	attrs []field // attributes of WithAttrs, keys qualified
	group string  // key prefix from WithGroup, "g." form
}

// field is one rendered attribute.
type field struct{ key, value string }

// New returns a handler writing to w records at level or above (nil level
// means slog.LevelInfo).
func New(w io.Writer, level slog.Leveler) *Handler {
	if level == nil {
		level = slog.LevelInfo
	}
	return &Handler{w: w, mu: &sync.Mutex{}, level: level}
}

var _ slog.Handler = (*Handler)(nil)

// Enabled reports whether records at l are written.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

// Tag is the line prefix of a level: [DEBUG], [INFO], [WARN] or [ERR].
func Tag(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "[ERR]"
	case l >= slog.LevelWarn:
		return "[WARN]"
	case l >= slog.LevelInfo:
		return "[INFO]"
	}
	return "[DEBUG]"
}

// Handle writes one line for r.
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	fields := append([]field(nil), h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		fields = appendAttr(fields, h.group, a)
		return true
	})
	var b strings.Builder
	b.WriteString(Tag(r.Level))
	b.WriteByte(' ')
	b.WriteString(r.Message)
	if r.Level >= slog.LevelWarn {
		for i, f := range fields {
			if i == 0 {
				b.WriteString(" (")
			} else {
				b.WriteString("; ")
			}
			b.WriteString(f.key + ": " + f.value)
			if i == len(fields)-1 {
				b.WriteByte(')')
			}
		}
	} else {
		for _, f := range fields {
			b.WriteString(" " + f.key + "=" + quote(f.value))
		}
	}
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

// WithAttrs returns a handler that adds attrs to every line.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append([]field(nil), h.attrs...)
	for _, a := range attrs {
		c.attrs = appendAttr(c.attrs, h.group, a)
	}
	return &c
}

// WithGroup returns a handler that qualifies later keys with name.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.group = h.group + name + "."
	return &c
}

func appendAttr(fields []field, group string, a slog.Attr) []field {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return fields
	}
	if a.Value.Kind() == slog.KindGroup {
		g := group
		if a.Key != "" {
			g += a.Key + "."
		}
		for _, ga := range a.Value.Group() {
			fields = appendAttr(fields, g, ga)
		}
		return fields
	}
	return append(fields, field{key: group + a.Key, value: formatValue(a.Value)})
}

// formatValue renders a value unquoted; debug lines quote it (quote).
func formatValue(v slog.Value) string {
	switch v.Kind() {
	case slog.KindDuration:
		return formatDuration(v.Duration())
	case slog.KindTime:
		return v.Time().UTC().Format(time.RFC3339Nano)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return err.Error()
		}
		return fmt.Sprint(v.Any())
	}
	return v.String()
}

// formatDuration prints milliseconds with two decimals ("12.34ms"), the
// unit every duration in the logs uses so they compare at a glance.
func formatDuration(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
}

// quote leaves plain words alone and quotes values with spaces, quotes,
// "=" or control characters, so a line always splits back into its pairs.
func quote(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if unicode.IsSpace(r) || r == '"' || r == '=' || !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

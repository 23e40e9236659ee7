package engine

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

func TestMaskError(t *testing.T) {
	secrets := map[string]string{"API_KEY": "s3cr3tVALUE"}
	cause := errdefs.ErrInvalidArgument.WithMessage("setup sees s3cr3tVALUE")
	err := maskError(secrets, fmt.Errorf("Setup script failed (exit code 3): %w", cause))
	if got := err.Error(); got != "Setup script failed (exit code 3): setup sees ***" {
		t.Fatalf("Error() = %q", got)
	}
	if !errdefs.IsInvalidArgument(err) || !errors.Is(err, cause) {
		t.Fatal("masking lost the error's class or chain")
	}
	plain := errors.New("nothing secret")
	if maskError(secrets, plain) != plain || maskError(nil, cause) != cause || maskError(secrets, nil) != nil {
		t.Fatal("an error without secrets must be returned as it is")
	}
}

// Logs at every level, in messages, attributes, groups, errors and
// pre-bound attributes, never carry a secret.
func TestMaskingLogger(t *testing.T) {
	var buf bytes.Buffer
	base := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	log := newMaskingLogger(base, map[string]string{"A": "topsecret", "B": "hunter2"})
	log = log.With("bound", "bound-topsecret").WithGroup("g")
	log.Debug("msg topsecret", "line", "x hunter2 y", "err", errors.New("fail: topsecret"),
		slog.Group("grp", "inner", "hunter2"), "n", 42, "any", []string{"topsecret"})
	log.Warn("warn", "line", "topsecret")
	log.Error("error hunter2")
	out := buf.String()
	for _, s := range []string{"topsecret", "hunter2"} {
		if strings.Contains(out, s) {
			t.Fatalf("log carries secret %q:\n%s", s, out)
		}
	}
	for _, want := range []string{`msg="msg ***"`, `bound=bound-***`, `g.line="x *** y"`, `g.err="fail: ***"`,
		`g.grp.inner=***`, `g.n=42`, `g.any=[***]`, `msg="error ***"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if newMaskingLogger(base, nil) != base {
		t.Error("no secrets: the logger must be returned as it is")
	}
}

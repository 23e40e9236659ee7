package engine

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// A failed setup script's stderr is part of isol8's own error message; the
// secret it printed must be masked there too. Before this test the error
// read "Setup script failed (exit code 3): setup sees s3cr3tVALUE".
func TestSecretsMaskedInMessages(t *testing.T) {
	var logs syncBuffer
	e := newTestEngine(t, Options{
		Secrets: map[string]string{"API_KEY": "s3cr3tVALUE"},
		Logger:  slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	mustHaveImage(t, e, "bash")
	req := Request{Runtime: "bash", Code: "echo never", SetupScript: `echo "setup sees $API_KEY" >&2; exit 3`}

	_, err := e.Execute(t.Context(), req)
	if err == nil {
		t.Fatal("a failing setup script did not fail the execution")
	}
	if want := "Setup script failed (exit code 3): setup sees ***"; err.Error() != want {
		t.Errorf("Execute error = %q, want %q", err, want)
	}
	// A typed failure callers can branch on (before, execute returned
	// (nil, nil) inside and a sink carried the error out).
	var se *SetupError
	if !errors.As(err, &se) || se.Kind != "setup" || se.ExitCode != 3 || se.Stderr != "setup sees ***" {
		t.Errorf("Execute error %#v is not the setup failure", err)
	}

	events, err := e.ExecuteStream(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	sawError := false
	for ev := range events {
		all.WriteString(ev.Type + ":" + ev.Data + "\n")
		sawError = sawError || ev.Type == EventError
	}
	if !sawError || !strings.Contains(all.String(), "***") {
		t.Errorf("stream lacks the masked setup output or its error event:\n%s", all.String())
	}
	for what, text := range map[string]string{"stream": all.String(), "logs": logs.String()} {
		if strings.Contains(text, "s3cr3tVALUE") {
			t.Errorf("%s carry the secret in clear:\n%s", what, text)
		}
	}
}

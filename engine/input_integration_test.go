package engine

import (
	"strings"
	"testing"
	"time"
)

// ExecuteInteractive: stdin written while the program runs reaches it,
// and SIGTERM reaches its process group (a trap sees it).
func TestExecuteInteractive(t *testing.T) {
	e := newTestEngine(t, Options{})
	mustHaveImage(t, e, "bash")
	in := NewInput()
	ch, err := e.ExecuteInteractive(t.Context(), Request{Runtime: "bash",
		Code: `trap 'echo got-term; exit 3' TERM; read line; echo "read $line"; sleep 30 & wait`}, in)
	if err != nil {
		t.Fatal(err)
	}
	in.Write(t.Context(), []byte("hello\n"))
	var out strings.Builder
	exit := ""
	timeout := time.After(20 * time.Second)
	signalled := false
	for exit == "" {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended without exit: %q", out.String())
			}
			switch ev.Type {
			case EventStdout:
				out.WriteString(ev.Data)
			case EventExit:
				exit = ev.Data
			}
			if !signalled && strings.Contains(out.String(), "read hello\n") {
				signalled = true
				in.Signal(t.Context(), "SIGTERM")
			}
		case <-timeout:
			t.Fatalf("no exit; output %q", out.String())
		}
	}
	if out.String() != "read hello\ngot-term\n" || exit != "3" {
		t.Fatalf("output %q exit %s", out.String(), exit)
	}
}

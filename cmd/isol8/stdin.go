package main

import (
	"io"
	"os"

	"github.com/isol8/isol8/engine"
)

// stdinKind is what the process's standard input is connected to.
type stdinKind int

const (
	stdinOther    stdinKind = iota // /dev/null, a socket, closed: never read unasked
	stdinTerminal                  // an interactive terminal
	stdinPiped                     // a pipe or a regular file (`echo x | isol8 ...`, `< file`)
)

// classifyStdin looks at f without reading it.
func classifyStdin(f *os.File) stdinKind {
	st, err := f.Stat()
	if err != nil {
		return stdinOther
	}
	switch m := st.Mode(); {
	case m&os.ModeNamedPipe != 0, m.IsRegular():
		return stdinPiped
	case m&os.ModeCharDevice != 0:
		if isTerminal(f) {
			return stdinTerminal
		}
	}
	return stdinOther
}

// stdinPrompt tells a user at a terminal that `isol8 run` without code is
// waiting for it, instead of waiting silently.
const stdinPrompt = "Reading code from stdin (end with Ctrl-D)...\n"

// pipedStdin returns what was piped into isol8 when the code came from
// elsewhere (-e, a file, --cmd): it becomes the program's standard input.
// --stdin wins: with it, isol8's own stdin is not read at all. ok is false
// when nothing is piped.
func (a *app) pipedStdin(f *runFlags) (data string, ok bool, err error) {
	if a.stdinKind == nil || a.stdinKind() != stdinPiped || f.given("stdin") {
		return "", false, nil
	}
	b, err := io.ReadAll(io.LimitReader(a.stdin, engine.MaxStdinBytes+1))
	if err != nil {
		return "", false, errf("Cannot read standard input: %s", err)
	}
	if len(b) > engine.MaxStdinBytes {
		return "", false, errf("Piped standard input exceeds %d bytes", engine.MaxStdinBytes)
	}
	return string(b), true, nil
}

// Command isol8 is the command-line face of isol8: it runs untrusted
// Python, Node.js, Bun, Deno and Bash code in containerd sandboxes. It only
// turns flags into engine options and requests, calls the engine once and prints what comes back; everything else lives in
// the library packages.
//
// Only main reads os.Args, the process environment and signals, or calls
// os.Exit: the whole CLI is driven in-process through (*app).run, which is
// what the tests do.
package main

import (
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run builds the process-wide app and runs one command line.
func run(args []string) int {
	env := envMap(os.Environ())
	cwd, err := os.Getwd()
	if err != nil {
		cwd = "."
	}
	a := newApp(os.Stdin, os.Stdout, os.Stderr, env, cwd)
	if a.home == "" {
		if h, err := os.UserHomeDir(); err == nil {
			a.home = h
		}
	}
	// With SIGPIPE subscribed, a write to a closed stdout pipe fails with
	// EPIPE instead of killing the process, so the run can remove its
	// sandbox before exiting 141.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	a.notify = func(c chan<- os.Signal) { signal.Notify(c, syscall.SIGINT, syscall.SIGTERM) }
	a.stopNotify = func(c chan<- os.Signal) { signal.Stop(c) }
	a.stdinKind = func() stdinKind { return classifyStdin(os.Stdin) }
	return a.run(args)
}

// envMap turns os.Environ-style entries into a map (later entries win).
func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

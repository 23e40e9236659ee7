package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/isol8/isol8/client"
	"github.com/isol8/isol8/config"
	"github.com/isol8/isol8/engine"
)

// remoteHost resolves the server a run goes to: --host, then ISOL8_HOST,
// then config host; "" runs locally.
func (a *app) remoteHost(flag string, cfg *config.Config) string {
	if flag != "" {
		return flag
	}
	if h := a.env["ISOL8_HOST"]; h != "" {
		return h
	}
	if cfg != nil {
		return cfg.Host
	}
	return ""
}

// runRemote is `isol8 run` on a server: the resolved options travel as
// the request's options, output and exit codes are those of a local run,
// and an interrupt closes the stream, which ends the program remotely.
func (a *app) runRemote(ctx context.Context, f *runFlags, opts engine.Options, req engine.Request) error {
	key, err := a.resolveAPIKey(f.host, f.key)
	if err != nil {
		return err
	}
	sessionID, named := f.sessionID, f.sessionID != ""
	if !named && f.persistent {
		sessionID = fmt.Sprintf("cli-%d", a.now().UnixMilli())
	}
	if sessionID != "" {
		fmt.Fprintf(a.stderr, "[Run] Session ID: %s\n", sessionID)
	}
	co := opts.Client()
	co.Mode = "" // the server decides the mode from the session id
	c, err := client.New(client.Options{Host: f.host, APIKey: key, SessionID: sessionID, Options: &co})
	if err != nil {
		return errf("%s", err)
	}
	ctx, caught, release := a.interruptible(ctx)
	defer release()
	if !named {
		// An auto-generated session lives as long as this run.
		defer a.stopEngine(c, a.logger(opts.Debug))
	}
	if opts.Debug {
		fmt.Fprintf(a.stderr, "[DEBUG] [Run] Remote host: %s\n", strings.TrimSuffix(f.host, "/"))
		fmt.Fprintln(a.stderr, "- Starting execution...")
	}
	memLimit := orDefault(opts.MemoryLimit, engine.DefaultMemoryLimit)
	var code int
	if f.noStream {
		code, err = a.runBuffered(ctx, c, req, f.out, memLimit)
	} else {
		code, err = a.runStreaming(ctx, c, req, memLimit)
	}
	if s := caught(); s != nil {
		return exitCode(signalExitCode(s))
	}
	if err != nil {
		return err
	}
	return exitCode(code)
}

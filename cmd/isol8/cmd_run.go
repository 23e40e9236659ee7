package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/isol8/isol8"
	"github.com/isol8/isol8/engine"
	"github.com/isol8/isol8/remotecode"
	"github.com/isol8/isol8/runtimes"
)

func (a *app) runCommand(g *globals) *cobra.Command {
	f := &runFlags{}
	c := &cobra.Command{
		Use:   "run [file]",
		Short: "Execute code in an isolated sandbox",
		Long: "Execute code once in an isolated sandbox and exit with the program's exit code.\n\n" +
			"The code comes from --cmd, -e, the file argument or, failing all of these,\n" +
			"standard input. The runtime is detected from the file extension\n" +
			"(.py python, .js/.cjs/.mjs node, .ts bun, .mts deno, .sh bash) unless\n" +
			"--runtime is given; the default is python (bash for --cmd).\n\n" +
			"Output is streamed unless --no-stream is given. Options fall back to the config\n" +
			"file (`isol8 config`), then to built-in defaults. Progress lines such as\n" +
			"\"- Starting execution...\" are printed on stderr only with --debug.\n" +
			"Interrupted runs (SIGINT, SIGTERM) remove their sandbox and exit 130 or 143.",
		Args:        maxArgs(1),
		Annotations: needsConfig,
		RunE: func(c *cobra.Command, args []string) error {
			f.set = map[string]bool{}
			c.Flags().Visit(func(fl *pflag.Flag) { f.set[fl.Name] = true })
			file := ""
			if len(args) > 0 {
				file = args[0]
			}
			return a.runCode(c.Context(), g, f, file)
		},
	}
	fs := c.Flags()
	strFlag(fs, &f.eval, "eval", "e", "code", "inline code to run")
	strFlag(fs, &f.runtime, "runtime", "r", "name", "runtime: "+strings.Join(runtimes.Available(), ", ")+" (default: detected, else python)")
	strFlag(fs, &f.net, "net", "", "mode", "network mode: none, host, filtered (default: config defaults.network, else none)")
	strsFlag(fs, &f.allow, "allow", "", "regex", "allow hosts matching regex in filtered mode (repeatable; replaces config network.whitelist)")
	strsFlag(fs, &f.deny, "deny", "", "regex", "deny hosts matching regex in filtered mode (repeatable; replaces config network.blacklist)")
	strFlag(fs, &f.out, "out", "", "file", "write the final stdout to a local file (requires --no-stream)")
	fs.BoolVar(&f.persistent, "persistent", false, "keep one container for this engine (persistent mode)")
	strFlag(fs, &f.sessionID, "session-id", "", "id", "named remote session; implies --persistent, requires --host")
	strFlag(fs, &f.timeout, "timeout", "", "ms", "timeout of each phase in milliseconds (default: config defaults.timeoutMs)")
	strFlag(fs, &f.memory, "memory", "", "limit", "memory limit, e.g. 512m, 1g (default: config defaults.memoryLimit)")
	strFlag(fs, &f.cpu, "cpu", "", "limit", "CPU limit in cores, e.g. 0.5 (default: config defaults.cpuLimit)")
	strFlag(fs, &f.image, "image", "", "name", "use this image for every runtime")
	strFlag(fs, &f.pidsLimit, "pids-limit", "", "n", "maximum number of processes (default: 64)")
	strFlag(fs, &f.maxOutput, "max-output", "", "bytes", "output cap per stream (buffered default: 1048576; streaming: none unless given)")
	strsFlag(fs, &f.secrets, "secret", "", "KEY=VALUE", "secret environment variable, masked as *** in output (repeatable)")
	strFlag(fs, &f.sandboxSize, "sandbox-size", "", "size", "size of the /sandbox tmpfs (default: config defaults.sandboxSize, else 512m)")
	strFlag(fs, &f.tmpSize, "tmp-size", "", "size", "size of the /tmp tmpfs (default: config defaults.tmpSize)")
	strFlag(fs, &f.stdin, "stdin", "", "data", "data piped to the program's stdin")
	strsFlag(fs, &f.install, "install", "", "package", "install a package into /sandbox before the run (repeatable; without --net the network is limited to the package registry)")
	strsFlag(fs, &f.setup, "setup", "", "command", "setup script run before the code, or a local file holding one (repeatable)")
	strFlag(fs, &f.workdir, "workdir", "", "path", "working directory inside /sandbox (default: /sandbox)")
	strFlag(fs, &f.url, "url", "", "url", "fetch the code from a URL (requires config remoteCode.enabled)")
	strFlag(fs, &f.github, "github", "", "owner/repo/ref/path", "fetch the code from GitHub (raw.githubusercontent.com)")
	strFlag(fs, &f.gist, "gist", "", "gistId/file.ext", "fetch the code from a GitHub gist")
	strFlag(fs, &f.hash, "hash", "", "sha256", "expected SHA-256 of fetched code")
	fs.BoolVar(&f.insecureURL, "allow-insecure-code-url", false, "permit http:// code URLs for this run")
	strFlag(fs, &f.host, "host", "", "url", "run on an isol8 server: http(s)://host:port or unix:///path (default: $ISOL8_HOST, config host)")
	strFlag(fs, &f.key, "key", "", "key", "API key for --host (default: $ISOL8_API_KEY, then `isol8 login` credentials)")
	fs.BoolVar(&f.noStream, "no-stream", false, "buffer the output and print it when the run ends")
	fs.BoolVar(&f.persist, "persist", false, "leave the container running after the run (for debugging; `isol8 cleanup` removes it)")
	fs.BoolVar(&f.logNetwork, "log-network", false, "collect proxy request logs (filtered network only)")
	strFlag(fs, &f.agentFlags, "agent-flags", "", "flags", "extra flags for the agent command, before -p")
	strFlag(fs, &f.files, "files", "", "dir", "copy a local directory into /sandbox (skips .git, node_modules, __pycache__, .venv, venv, .tox)")
	strFlag(fs, &f.cmd, "cmd", "", "command", "run a bash command line instead of code (runtime selects the image; default bash)")
	fs.BoolVar(&f.writable, "writable", false, "make the container's root filesystem writable")
	return c
}

// runCode is `isol8 run`.
func (a *app) runCode(ctx context.Context, g *globals, f *runFlags, file string) error {
	if f.given("out") && !f.noStream {
		return errf("--out requires --no-stream")
	}
	if err := f.validate(); err != nil {
		return err
	}
	f.debugOption = g.debugOn()
	f.host = a.remoteHost(f.host, g.cfg)
	if f.sessionID != "" && f.host == "" {
		return errf("--session-id requires --host (remote server). Session IDs are managed by the server.")
	}

	src, err := a.resolveSource(f, file)
	if err != nil {
		return err
	}
	opts := deriveOptions(f, g.cfg, src.runtime, func(rt string) []string {
		if a.registries == nil {
			return nil
		}
		return a.registries(ctx).Patterns(rt)
	})
	if err := refuseInstallWithoutNetwork(f, opts.Network); err != nil {
		return err
	}
	if src.codeURL != "" && !g.cfg.RemoteCode.Enabled {
		return errf("%s", remotecode.TextDisabled)
	}
	if err := configMemoryOK(f, g.cfg, opts.MemoryLimit); err != nil {
		return err
	}
	for _, w := range f.filterWarnings(opts.Network) {
		fmt.Fprintln(a.stderr, w)
	}
	req, err := a.buildRequest(f, src, opts.TimeoutMs)
	if err != nil {
		return err
	}
	if w := weakenedWarning(opts, g.cfg); w != "" {
		fmt.Fprintln(a.stderr, w)
	}
	if !src.fromStdin { // when stdin held the code, the program gets only --stdin
		data, ok, err := a.pipedStdin(f)
		if err != nil {
			return err
		}
		if ok {
			req.Stdin = data
		}
	}

	if f.host != "" {
		return a.runRemote(ctx, f, opts, req)
	}

	// Signals stay caught until the engine has stopped: the deferred Stop
	// runs before release, and only an interrupt cancels the run's context.
	ctx, caught, release := a.interruptible(ctx)
	defer release()
	a.wire(&opts, g)
	opts.OnKeep = a.printKept
	if len(f.install) > 0 && a.registries != nil {
		reg := a.registries(ctx)
		opts.Registries = &reg
	}
	auditLog, err := a.wireProvenance(&opts, g.cfg)
	if err != nil {
		return err
	}
	defer a.closeAudit(auditLog) // after the engine stopped (deferred below)
	logOptions(opts.Logger, f, g.cfg, opts)
	eng, err := a.newEngine(opts)
	if err != nil {
		return errf("%s", err)
	}
	defer a.stopEngine(eng, opts.Logger)
	if opts.Mode == engine.ModePersistent {
		fmt.Fprintf(a.stderr, "[Run] Session ID: cli-%d\n", a.now().UnixMilli())
	}
	if opts.Debug {
		fmt.Fprintln(a.stderr, "- Starting execution...")
	}
	memLimit := orDefault(opts.MemoryLimit, engine.DefaultMemoryLimit)
	var code int
	if f.noStream {
		code, err = a.runBuffered(ctx, eng, req, f.out, memLimit)
	} else {
		code, err = a.runStreaming(ctx, eng, req, memLimit)
	}
	if s := caught(); s != nil {
		return exitCode(signalExitCode(s))
	}
	if err != nil {
		return err
	}
	return exitCode(code)
}

// drain waits (at most stopTimeout) for a cancelled stream to end, so the
// engine has released the sandbox before it is stopped.
func drain(events <-chan engine.Event) {
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-events:
			if !ok {
				return
			}
		case <-timer.C:
			return
		}
	}
}

// printOOM explains an exit caused by the memory limit.
func (a *app) printOOM(limit string) {
	fmt.Fprintf(a.stderr, "[ERR] Out of memory (limit %s): raise --memory\n", limit)
}

// exitBrokenPipe is the shell status of a process killed by SIGPIPE; the
// CLI exits with it when its stdout reader went away.
const exitBrokenPipe = 128 + int(syscall.SIGPIPE)

// brokenPipe reports a write that failed because the reader of our
// standard output is gone (`isol8 run ... | head -1`).
func brokenPipe(err error) bool { return errors.Is(err, syscall.EPIPE) }

// printKept tells the user which container --persist left running and how
// to get into it and remove it.
func (a *app) printKept(k engine.KeptSandbox) {
	fmt.Fprintf(a.stderr, "[Run] Container kept running (--persist): %s\n", k.ID)
	if k.Backend == isol8.DriverDocker {
		host := ""
		if k.Address != "" {
			host = "-H " + k.Address + " "
		}
		fmt.Fprintf(a.stderr, "[Run] Get a shell in it: docker %sexec -it %s bash\n", host, k.ID)
		fmt.Fprintf(a.stderr, "[Run] Remove it: docker %srm -f %s\n", host, k.ID)
		fmt.Fprintf(a.stderr, "[Run] (or remove every isol8 container: isol8 cleanup --driver docker)\n")
		return
	}
	fmt.Fprintf(a.stderr, "[Run] Get a shell in it: ctr --address %s --namespace %s task exec -t --exec-id debug %s bash\n",
		k.Address, k.Namespace, k.ID)
	fmt.Fprintf(a.stderr, "[Run] Remove it: ctr --address %s --namespace %s task rm -f %s && ctr --address %s --namespace %s container rm %s\n",
		k.Address, k.Namespace, k.ID, k.Address, k.Namespace, k.ID)
	fmt.Fprintf(a.stderr, "[Run] (or remove every isol8 container: isol8 cleanup)\n")
}

// buildRequest turns the resolved source and the flags into a request.
func (a *app) buildRequest(f *runFlags, src source, timeoutMs int64) (engine.Request, error) {
	req := engine.Request{
		Runtime:              src.runtime,
		Code:                 src.code,
		Cmd:                  src.cmd,
		CodeURL:              src.codeURL,
		CodeHash:             src.codeHash,
		AllowInsecureCodeURL: f.insecureURL,
		TimeoutMs:            timeoutMs,
		FileExtension:        src.fileExt,
		Stdin:                f.stdin,
		InstallPackages:      f.install,
		Workdir:              f.workdir,
		AgentFlags:           f.agentFlags,
	}
	if len(f.setup) > 0 {
		s, err := a.setupScript(f.setup)
		if err != nil {
			return req, err
		}
		req.SetupScript = s
	}
	if f.given("files") {
		files, err := a.collectFiles(f.files)
		if err != nil {
			return req, err
		}
		req.Files = files
	}
	return req, nil
}

// runStreaming prints events as they come: output raw, errors as [ERR]
// lines (exit code 1 unless a later exit event says otherwise).
func (a *app) runStreaming(ctx context.Context, eng isol8.Engine, req engine.Request, memLimit string) (int, error) {
	// Cancelling ends the program and releases the sandbox: done when the
	// reader of our stdout goes away.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := eng.ExecuteStream(ctx, req)
	if err != nil {
		if ctx.Err() != nil {
			return 1, nil
		}
		return 1, errf("%s", err)
	}
	code := 0
	for {
		select {
		case <-ctx.Done():
			return 1, nil // interrupted; the engine kills the program and removes the sandbox
		case ev, ok := <-events:
			if !ok {
				return code, nil
			}
			switch ev.Type {
			case engine.EventStdout:
				if _, err := io.WriteString(a.stdout, ev.Data); brokenPipe(err) {
					cancel()
					drain(events)
					return exitBrokenPipe, nil
				}
			case engine.EventStderr:
				io.WriteString(a.stderr, ev.Data)
			case engine.EventError:
				fmt.Fprintf(a.stderr, "[ERR] %s\n", ev.Data)
				code = 1
			case engine.EventExit:
				if n, err := strconv.Atoi(ev.Data); err == nil && n != 0 {
					code = n
				}
				if ev.Truncated {
					fmt.Fprintln(a.stderr, "[WARN] Output was truncated")
				}
				if ev.OOMKilled {
					a.printOOM(memLimit)
				}
			}
		}
	}
}

// runBuffered runs to completion and prints the result.
func (a *app) runBuffered(ctx context.Context, eng isol8.Engine, req engine.Request, out, memLimit string) (int, error) {
	res, err := eng.Execute(ctx, req)
	if err != nil {
		if ctx.Err() != nil {
			return 1, nil
		}
		return 1, errf("%s", err)
	}
	if res.Stdout != "" {
		if _, err := fmt.Fprintln(a.stdout, res.Stdout); brokenPipe(err) {
			return exitBrokenPipe, nil
		}
	}
	if res.Stderr != "" {
		fmt.Fprintln(a.stderr, res.Stderr)
	}
	if res.Truncated {
		fmt.Fprintln(a.stderr, "[WARN] Output was truncated")
	}
	if res.OOMKilled {
		a.printOOM(memLimit)
	}
	a.printNetworkLogs(res.NetworkLogs)
	if out != "" && res.Stdout != "" {
		if err := os.WriteFile(a.abs(out), []byte(res.Stdout), 0o644); err != nil {
			return 1, errf("Cannot write %s: %s", out, pathErrReason(err))
		}
		fmt.Fprintf(a.stderr, "[Run] Output written to %s\n", out)
	}
	return res.ExitCode, nil
}

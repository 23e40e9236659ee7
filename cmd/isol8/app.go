package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/isol8/isol8"
	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/config"
	"github.com/isol8/isol8/engine"
	"github.com/isol8/isol8/internal/logfmt"
	"github.com/isol8/isol8/registry"
)

// version is printed by `isol8 --version` and the debug header.
const version = api.Version

// stopTimeout bounds how long the CLI waits for the engine to stop before
// it exits anyway.
const stopTimeout = 5 * time.Second

// The CLI talks to sandboxes only through the public interfaces of package
// isol8: an isol8.Engine runs code, an isol8.Admin sets up and cleans up.
// Local ones come from isol8.New and isol8.NewHost; a remote
// implementation can take their place, and tests substitute a fake.

// stopper is what stopEngine needs of either.
type stopper interface {
	Stop(ctx context.Context) error
}

// app is one CLI invocation's world: its streams, environment, working and
// home directories and the factories it needs. Nothing in the CLI reads the
// process state directly, so tests drive the whole CLI in-process.
type app struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	env    map[string]string
	cwd    string
	home   string
	now    func() time.Time

	// newEngine builds the engine of a run (isol8.New outside tests).
	newEngine func(engine.Options) (isol8.Engine, error)
	// newAdmin builds the admin side for setup and cleanup (a local
	// isol8.Host outside tests) from the operator part of the options.
	newAdmin func(engine.Options) (isol8.Admin, error)
	// registries returns the host's registry configuration: the allow list
	// of runs with installs (its Patterns) and what they hand to the engine
	// (nil: the engine reads it itself).
	registries func(ctx context.Context) registry.Config
	// notify subscribes c to SIGINT and SIGTERM; stopNotify undoes it. Nil
	// notify means no signal handling.
	notify     func(c chan<- os.Signal)
	stopNotify func(c chan<- os.Signal)
	// stdinKind says what stdin is connected to; nil means "other" (never
	// read unless it is the only source of code).
	stdinKind func() stdinKind
}

// newApp returns an app with the real engine and registry lookups and no
// signal handling. home is taken from env["HOME"].
func newApp(stdin io.Reader, stdout, stderr io.Writer, env map[string]string, cwd string) *app {
	a := &app{
		stdin:  stdin,
		stdout: stdout,
		stderr: stderr,
		env:    env,
		cwd:    cwd,
		home:   env["HOME"],
		now:    time.Now,
	}
	a.newEngine = isol8.New
	a.newAdmin = func(o engine.Options) (isol8.Admin, error) {
		h, err := isol8.NewHost(o.HostOptions())
		if err != nil {
			return nil, err
		}
		return h, nil
	}
	// Read once per process: the allow list and the sandbox's registry
	// variables come from the same reading.
	var once sync.Once
	var reg registry.Config
	a.registries = func(ctx context.Context) registry.Config {
		once.Do(func() { reg = registry.Host{Env: a.env, Home: a.home, Cwd: a.cwd}.Load(ctx) })
		return reg
	}
	return a
}

// globals holds the persistent flags and what every command shares.
type globals struct {
	debug             bool
	containerdAddress string
	driver            string         // --driver: containerd or docker
	configPath        string         // --config: an explicit, trusted config file
	cfg               *config.Config // loaded for commands annotated with annConfig
}

func (g *globals) debugOn() bool { return g.debug || (g.cfg != nil && g.cfg.Debug) }

// annConfig marks commands that load the configuration file before running.
const annConfig = "isol8/config"

var needsConfig = map[string]string{annConfig: "load"}

// run executes one command line and returns the process exit code.
func (a *app) run(args []string) int {
	if args == nil {
		args = []string{} // cobra reads os.Args when args is nil
	}
	g := &globals{}
	root := a.rootCommand(g)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return a.report(err)
}

// report prints err the way the reference CLI does and returns the exit code.
func (a *app) report(err error) int {
	if err == nil {
		return 0
	}
	var ce *cliError
	if errors.As(err, &ce) {
		if ce.msg != "" {
			fmt.Fprintln(a.stderr, ce.msg)
		}
		return ce.code
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "unknown command "); ok {
		// cobra: unknown command "x" for "isol8"\n\nDid you mean this?...
		if name, err := strconv.QuotedPrefix(rest); err == nil {
			if n, err := strconv.Unquote(name); err == nil {
				fmt.Fprintf(a.stderr, "error: unknown command '%s'\n", n)
				if s := cobraSuggestions(msg); len(s) > 0 {
					fmt.Fprintf(a.stderr, "(Did you mean %s?)\n", strings.Join(s, " or "))
				}
				return 1
			}
		}
	}
	fmt.Fprintf(a.stderr, "error: %s\n", msg)
	return 1
}

// cliError ends a command: msg, when not empty, is printed on stderr and the
// process exits with code.
type cliError struct {
	code int
	msg  string
}

func (e *cliError) Error() string {
	if e.msg == "" {
		return "exit status " + strconv.Itoa(e.code)
	}
	return e.msg
}

// errf is a failure printed as "[ERR] <message>" with exit code 1.
func errf(format string, args ...any) error {
	return &cliError{code: 1, msg: "[ERR] " + fmt.Sprintf(format, args...)}
}

// usageErrorf is a command-line syntax error, printed as "error: <message>"
// with exit code 1 (commander's wording).
func usageErrorf(format string, args ...any) error {
	return &cliError{code: 1, msg: "error: " + fmt.Sprintf(format, args...)}
}

// exitCode ends a command with code and prints nothing more.
func exitCode(code int) error {
	if code == 0 {
		return nil
	}
	return &cliError{code: code}
}

func (a *app) rootCommand(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "isol8",
		Short: "Run untrusted code in isolated sandboxes",
		Long: "isol8 runs untrusted Python, Node.js, Bun, Deno and Bash code\n" +
			"in locked-down containerd sandboxes: no network by default, read-only root filesystem,\n" +
			"memory, CPU, PID and output limits, seccomp and secret masking.",
		Version:           version,
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		PersistentPreRunE: func(c *cobra.Command, _ []string) error { return a.before(c, g) },
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(flagError)
	root.SetHelpFunc(func(c *cobra.Command, _ []string) { fmt.Fprint(c.OutOrStdout(), helpText(c)) })
	root.SetUsageFunc(func(c *cobra.Command) error {
		_, err := fmt.Fprint(c.OutOrStderr(), helpText(c))
		return err
	})

	root.Flags().BoolP("version", "V", false, "output the version number")
	pf := root.PersistentFlags()
	pf.SortFlags = false
	pf.BoolVar(&g.debug, "debug", false, "enable debug logging on stderr (also config \"debug\")")
	strFlag(pf, &g.configPath, "config", "", "path",
		"config file to use instead of ./isol8.config.json or ~/.isol8/config.json (trusted with every key)")
	strFlag(pf, &g.containerdAddress, "containerd-address", "", "path",
		"containerd socket (default: $CONTAINERD_ADDRESS, config containerd.address, /run/containerd/containerd.sock)")
	strFlag(pf, &g.driver, "driver", "", "name",
		"container backend: containerd or docker (default: $ISOL8_DRIVER, config driver, containerd; docker honours $DOCKER_HOST)")

	root.AddCommand(
		a.setupCommand(g),
		a.buildCommand(g),
		a.listCustomCommand(g),
		a.runCommand(g),
		a.serveCommand(g),
		a.configCommand(g),
		a.cleanupCommand(g),
		a.loginCommand(g),
		a.logoutCommand(g),
		a.sessionCommand(g),
		a.auditCommand(g),
	)
	root.SetHelpCommand(&cobra.Command{
		Use:   "help [command]",
		Short: "display help for command",
		RunE: func(c *cobra.Command, args []string) error {
			target, rest, err := c.Root().Find(args)
			if err != nil {
				return err
			}
			if len(rest) > 0 && target.HasSubCommands() {
				return usageErrorf("unknown command '%s'", rest[0])
			}
			fmt.Fprint(c.OutOrStdout(), helpText(target))
			return nil
		},
	})
	root.InitDefaultHelpCmd()
	finishFlags(root)
	return root
}

// finishFlags keeps every command's flags in definition order and adds the
// help flag last, with commander's wording.
func finishFlags(c *cobra.Command) {
	c.Flags().SortFlags = false
	c.PersistentFlags().SortFlags = false
	c.Flags().BoolP("help", "h", false, "display help for command")
	for _, sub := range c.Commands() {
		finishFlags(sub)
	}
}

// before runs ahead of every command: it loads the configuration for the
// commands that need it and prints the debug header.
func (a *app) before(c *cobra.Command, g *globals) error {
	if c.Annotations[annConfig] != "" {
		cfg, err := a.loadConfig(g)
		if err != nil {
			return errf("%s", err)
		}
		g.cfg = cfg
	}
	if _, err := a.driverName(g); err != nil {
		return err
	}
	if g.debugOn() {
		fmt.Fprintf(a.stderr, "[CLI] Command: %s\n[CLI] Version: %s\n[CLI] Platform: %s %s\n",
			c.Name(), version, runtime.GOOS, runtime.GOARCH)
	}
	return nil
}

// loadConfig reads the --config file when given, else the first of
// ./isol8.config.json and ~/.isol8/config.json, judged for trust against the
// invoking user.
func (a *app) loadConfig(g *globals) (*config.Config, error) {
	if g.configPath != "" {
		return config.LoadFile(a.abs(g.configPath))
	}
	return config.Load(a.cwd, a.home, os.Getuid())
}

// flagError turns pflag's parse errors into commander's texts.
func flagError(c *cobra.Command, err error) error {
	var (
		notExist *pflag.NotExistError
		required *pflag.ValueRequiredError
		invalid  *pflag.InvalidValueError
		syntax   *pflag.InvalidSyntaxError
	)
	switch {
	case errors.As(err, &notExist):
		name := "--" + notExist.GetSpecifiedName()
		if notExist.GetSpecifiedShortnames() != "" {
			name = "-" + notExist.GetSpecifiedName()
			return usageErrorf("unknown option '%s'", name)
		}
		if s := suggestFlag(c, notExist.GetSpecifiedName()); s != "" {
			return usageErrorf("unknown option '%s'\n(Did you mean --%s?)", name, s)
		}
		return usageErrorf("unknown option '%s'", name)
	case errors.As(err, &required):
		return usageErrorf("option '%s' argument missing", flagSpec(required.GetFlag()))
	case errors.As(err, &invalid):
		return usageErrorf("option '%s' argument '%s' is invalid.", flagSpec(invalid.GetFlag()), invalid.GetValue())
	case errors.As(err, &syntax):
		return usageErrorf("unknown option '%s'", syntax.GetSpecifiedFlag())
	}
	return usageErrorf("%s", err)
}

// maxArgs accepts at most n positional arguments, with commander's error.
func maxArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) <= n {
			return nil
		}
		plural := "s"
		if n == 1 {
			plural = ""
		}
		return usageErrorf("too many arguments for '%s'. Expected %d argument%s but got %d.",
			c.Name(), n, plural, len(args))
	}
}

// annValue names a flag's value in help and error texts ("<code>").
const annValue = "isol8/value"

func strFlag(fs *pflag.FlagSet, p *string, name, short, value, usage string) {
	fs.StringVarP(p, name, short, "", usage)
	_ = fs.SetAnnotation(name, annValue, []string{value})
}

// strsFlag is a repeatable string flag; values are not split at commas.
func strsFlag(fs *pflag.FlagSet, p *[]string, name, short, value, usage string) {
	fs.StringArrayVarP(p, name, short, nil, usage)
	_ = fs.SetAnnotation(name, annValue, []string{value})
}

func valueName(f *pflag.Flag) string {
	if v := f.Annotations[annValue]; len(v) > 0 {
		return v[0]
	}
	if f.Value.Type() == "bool" {
		return ""
	}
	return "value"
}

// flagSpec renders a flag as commander does: "-e, --eval <code>".
func flagSpec(f *pflag.Flag) string {
	s := "--" + f.Name
	if f.Shorthand != "" {
		s = "-" + f.Shorthand + ", " + s
	}
	if v := valueName(f); v != "" {
		s += " <" + v + ">"
	}
	return s
}

// helpText renders a command's help (commander's layout, cobra's content).
func helpText(c *cobra.Command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: %s\n", useLine(c))
	desc := c.Long
	if desc == "" {
		desc = c.Short
	}
	if desc != "" {
		fmt.Fprintf(&b, "\n%s\n", strings.TrimRight(desc, "\n"))
	}
	if fs := c.LocalFlags(); fs.HasAvailableFlags() {
		b.WriteString("\nOptions:\n")
		b.WriteString(flagTable(fs))
	}
	if fs := c.InheritedFlags(); fs.HasAvailableFlags() {
		b.WriteString("\nGlobal Options:\n")
		b.WriteString(flagTable(fs))
	}
	if c.HasAvailableSubCommands() {
		var rows [][2]string
		for _, sub := range c.Commands() {
			if !sub.IsAvailableCommand() && sub.Name() != "help" {
				continue
			}
			rows = append(rows, [2]string{commandSpec(sub), sub.Short})
		}
		b.WriteString("\nCommands:\n")
		b.WriteString(table(rows))
		fmt.Fprintf(&b, "\nRun \"%s <command> --help\" for the options of a command.\n", c.CommandPath())
	}
	return b.String()
}

func useLine(c *cobra.Command) string {
	parts := []string{c.CommandPath()}
	if c.HasAvailableFlags() {
		parts = append(parts, "[options]")
	}
	_, rest, _ := strings.Cut(c.Use, " ")
	if rest != "" {
		parts = append(parts, rest)
	} else if c.HasAvailableSubCommands() {
		parts = append(parts, "[command]")
	}
	return strings.Join(parts, " ")
}

func commandSpec(c *cobra.Command) string {
	s := c.Name()
	hasOptions := false
	c.LocalFlags().VisitAll(func(f *pflag.Flag) {
		if f.Name != "help" && !f.Hidden {
			hasOptions = true
		}
	})
	if hasOptions {
		s += " [options]"
	}
	if _, rest, _ := strings.Cut(c.Use, " "); rest != "" {
		s += " " + rest
	} else if c.HasAvailableSubCommands() {
		s += " [command]"
	}
	return s
}

func flagTable(fs *pflag.FlagSet) string {
	var rows [][2]string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		spec := flagSpec(f)
		if f.Shorthand == "" {
			spec = "    " + spec
		}
		rows = append(rows, [2]string{spec, f.Usage})
	})
	return table(rows)
}

func table(rows [][2]string) string {
	width := 0
	for _, r := range rows {
		width = max(width, len(r[0]))
	}
	var b strings.Builder
	for _, r := range rows {
		if r[1] == "" {
			fmt.Fprintf(&b, "  %s\n", r[0])
			continue
		}
		fmt.Fprintf(&b, "  %-*s  %s\n", width, r[0], r[1])
	}
	return b.String()
}

// logger is the engine's logger: "[DEBUG] ..." lines on stderr with
// --debug, otherwise "[WARN] ..." and "[ERR] ..." lines only.
func (a *app) logger(debug bool) *slog.Logger {
	level := slog.LevelWarn
	if debug {
		level = slog.LevelDebug
	}
	return slog.New(logfmt.New(a.stderr, level))
}

// containerdAddress resolves the containerd socket: --containerd-address,
// then CONTAINERD_ADDRESS, then config containerd.address; empty leaves the
// engine default.
func (a *app) containerdAddress(g *globals) string {
	if g.containerdAddress != "" {
		return g.containerdAddress
	}
	if v := a.env["CONTAINERD_ADDRESS"]; v != "" {
		return v
	}
	if g.cfg != nil {
		return g.cfg.Containerd.Address
	}
	return ""
}

// driverName resolves the backend: --driver, then ISOL8_DRIVER, then
// config driver, else containerd.
func (a *app) driverName(g *globals) (string, error) {
	name := g.driver
	if name == "" {
		name = a.env["ISOL8_DRIVER"]
	}
	if name == "" && g.cfg != nil {
		name = g.cfg.Driver
	}
	switch name {
	case "", isol8.DriverContainerd:
		return isol8.DriverContainerd, nil
	case isol8.DriverDocker:
		return name, nil
	}
	return "", usageErrorf("Invalid driver: %q. Use containerd or docker.", name)
}

// wire adds the local backend wiring to engine options.
func (a *app) wire(o *engine.Options, g *globals) {
	if name, _ := a.driverName(g); name == isol8.DriverDocker {
		o.NewDriver = isol8.DockerDriver(a.env["DOCKER_HOST"])
	}
	o.Containerd = engine.ContainerdOptions{Address: a.containerdAddress(g)}
	if g.cfg != nil {
		o.Containerd.RuntimeBinary = g.cfg.Containerd.Runtime
		o.UserNS = userNSOptions(g.cfg.Security.UserNS)
	}
	o.Logger = a.logger(o.Debug)
	o.Progress = a.stderr
}

// interruptible returns a context cancelled by the first SIGINT or SIGTERM,
// a function reporting that signal (nil if none came) and a release func.
func (a *app) interruptible(parent context.Context) (context.Context, func() os.Signal, func()) {
	ctx, cancel := context.WithCancel(parent)
	if a.notify == nil {
		return ctx, func() os.Signal { return nil }, cancel
	}
	ch := make(chan os.Signal, 1)
	a.notify(ch)
	var (
		mu  sync.Mutex
		got os.Signal
	)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			mu.Lock()
			got = s
			mu.Unlock()
			cancel()
		case <-done:
		}
	}()
	var once sync.Once
	release := func() {
		once.Do(func() {
			close(done)
			if a.stopNotify != nil {
				a.stopNotify(ch)
			}
			cancel()
		})
	}
	caught := func() os.Signal {
		mu.Lock()
		defer mu.Unlock()
		return got
	}
	return ctx, caught, release
}

// signalExitCode is the conventional shell status of a run killed by s:
// 130 for SIGINT, 143 for SIGTERM.
func signalExitCode(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return 130
}

// stopEngine stops e, waiting at most stopTimeout. The engine's own
// sandbox removal continues detached if it takes longer.
func (a *app) stopEngine(e stopper, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Stop(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			log.Warn("engine stop failed", "error", err)
		}
	case <-ctx.Done():
		log.Warn("engine stop timed out", "timeout", stopTimeout)
	}
}

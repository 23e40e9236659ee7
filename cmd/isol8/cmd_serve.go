package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/isol8/isol8"
	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/auth"
	"github.com/isol8/isol8/config"
	"github.com/isol8/isol8/engine"
	"github.com/isol8/isol8/internal/logfmt"
	"github.com/isol8/isol8/server"
)

// serveFlags holds `isol8 serve`'s flags.
type serveFlags struct {
	port, key, authDB string
	listen            []string
	update            bool
}

func (a *app) serveCommand(g *globals) *cobra.Command {
	f := &serveFlags{}
	c := &cobra.Command{
		Use:   "serve",
		Short: "Start the isol8 REST server",
		Long: "Start the isol8 REST server. The port comes from --port, $ISOL8_PORT, $PORT, else 3000;\n" +
			"the master API key from --key or $ISOL8_API_KEY. --listen unix:///path also serves on a\n" +
			"unix socket (mode 0660), for `isol8 run --host unix:///path`. SIGINT/SIGTERM stop the\n" +
			"server and remove the sandboxes it made.",
		Args:        maxArgs(0),
		Annotations: needsConfig,
		RunE: func(c *cobra.Command, _ []string) error {
			return a.serve(c.Context(), g, f, c.Flags().Changed("auth-db"))
		},
	}
	fs := c.Flags()
	strFlag(fs, &f.port, "port", "p", "port", "port to listen on (default: $ISOL8_PORT, $PORT, 3000)")
	strFlag(fs, &f.key, "key", "k", "key", "master API key (default: $ISOL8_API_KEY)")
	strFlag(fs, &f.authDB, "auth-db", "", "conn", "enable DB-backed API keys (SQLite path or postgres:// / mysql:// URL)")
	strsFlag(fs, &f.listen, "listen", "", "addr", "also listen on unix:///path (repeatable)")
	fs.BoolVar(&f.update, "update", false, "accepted for compatibility; ignored (the server is built in)")
	return c
}

// servePort resolves the port: --port, then ISOL8_PORT, then PORT, then 3000.
func (a *app) servePort(f *serveFlags) (int, error) {
	raw, source := f.port, "--port"
	if raw == "" {
		raw, source = a.env["ISOL8_PORT"], "ISOL8_PORT"
	}
	if raw == "" {
		raw, source = a.env["PORT"], "PORT"
	}
	if raw == "" {
		return 3000, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(raw))
	if err != nil || n < 1 || n > 65535 {
		return 0, errf("Invalid port from %s: %s. Expected 1-65535.", source, raw)
	}
	return n, nil
}

func (a *app) serve(ctx context.Context, g *globals, f *serveFlags, authDBGiven bool) error {
	port, err := a.servePort(f)
	if err != nil {
		return err
	}
	key := f.key
	if key == "" {
		key = a.env["ISOL8_API_KEY"]
	}
	if key == "" {
		return errf("API key required. Use --key or ISOL8_API_KEY env var.")
	}
	var unixPaths []string
	for _, l := range f.listen {
		p, ok := strings.CutPrefix(l, "unix://")
		if !ok || p == "" || !strings.HasPrefix(p, "/") {
			return errf("Invalid --listen address: %s. Expected unix:///absolute/path", l)
		}
		unixPaths = append(unixPaths, p)
	}
	cfg := g.cfg
	if cfg == nil {
		cfg = config.Defaults()
	}

	keys, err := a.openKeys(ctx, cfg, f.authDB, authDBGiven)
	if err != nil {
		return err
	}
	listeners, err := a.serveListeners(port, unixPaths)
	if err != nil {
		if keys != nil {
			keys.Close()
		}
		return err
	}
	port = listeners[0].Addr().(*net.TCPAddr).Port

	o := engine.Options{MaxConcurrent: cfg.MaxConcurrent, MaxTimeoutMs: cfg.MaxTimeoutMs,
		MaxOutputPaths: cfg.MaxOutputPaths, MaxOutputFilesBytes: cfg.MaxOutputFilesBytes,
		Debug: g.debugOn()}
	if cfg.Security.CustomProfilePath != "" {
		o.Security = &engine.Security{CustomProfilePath: cfg.Security.CustomProfilePath}
	}
	a.wire(&o, g)
	// The operator's remote-code policy, SSRF switch and audit log hold
	// for every request: clients can only tighten the first.
	auditLog, err := a.wireProvenance(&o, cfg)
	if err != nil {
		closeAll(listeners)
		if keys != nil {
			keys.Close()
		}
		return err
	}
	defer a.closeAudit(auditLog) // after the host stopped (below)
	ho := o.HostOptions()
	if ho.NewDriver == nil {
		ho.NewDriver = isol8.ContainerdDriver(ho.Containerd)
	}
	host, err := engine.NewHost(ho)
	if err != nil {
		closeAll(listeners)
		return errf("%s", err)
	}
	// The server's own log (one line per request, key and session events)
	// is on at info level; --debug adds the traces.
	level := slog.LevelInfo
	if o.Debug {
		level = slog.LevelDebug
	}
	srvLog := slog.New(logfmt.New(a.stderr, level))
	if keys != nil {
		srvLog.Info("[Server] DB-backed auth enabled: " + auth.Redact(a.authConn(cfg, f.authDB)))
	}
	srv, err := server.New(server.Options{Host: host, MasterKey: key, Keys: keys, Config: cfg, Logger: srvLog, Audit: auditLog})
	if err != nil {
		closeAll(listeners)
		return errf("%s", err)
	}
	if err := host.Start(ctx); err != nil {
		fmt.Fprintf(a.stderr, "[WARN] Backend not reachable yet: %s\n", err)
	} else if len(cfg.Server.Prewarm) > 0 {
		go func() {
			if err := srv.Prewarm(ctx, cfg.Server.Prewarm...); err != nil {
				srvLog.Warn("prewarm failed", "error", err)
			}
		}()
	}

	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 30 * time.Second}
	sigCtx, caught, release := a.interruptible(ctx)
	defer release()
	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		go func() { errc <- hs.Serve(l) }()
	}
	fmt.Fprintf(a.stdout, "[INFO] isol8 server v%s listening on http://localhost:%d\n", api.Version, port)
	fmt.Fprintln(a.stdout, "       Auth: Bearer token required")
	if keys != nil {
		fmt.Fprintf(a.stdout, "       Auth DB: %s\n", auth.Redact(a.authConn(cfg, f.authDB)))
	}
	for _, p := range unixPaths {
		fmt.Fprintf(a.stdout, "       Also listening on unix://%s\n", p)
	}

	var serveErr error
	select {
	case <-sigCtx.Done():
	case serveErr = <-errc:
	}
	if caught() != nil {
		fmt.Fprintln(a.stdout, "[Serve] Shutting down server and cleaning up resources...")
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	closeErr := srv.Close(sctx)
	stopErr := host.Stop(sctx)
	for _, p := range unixPaths {
		_ = os.Remove(p)
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return errf("Server failed: %s", serveErr)
	}
	if err := errors.Join(closeErr, stopErr); err != nil {
		return errf("Cleanup failed: %s", err)
	}
	fmt.Fprintln(a.stdout, "[Serve] Cleanup complete")
	return nil
}

// openKeys opens the key store when --auth-db or config auth.enabled asks
// for one.
func (a *app) openKeys(ctx context.Context, cfg *config.Config, conn string, given bool) (server.KeyStore, error) {
	if !given && !cfg.Auth.Enabled {
		return nil, nil
	}
	connStr := a.authConn(cfg, conn)
	st, err := auth.OpenWith(ctx, connStr, auth.WithLogger(a.logger(false)))
	if err != nil {
		return nil, errf("Cannot open the auth database: %s", err)
	}
	sweepCtx, stopSweep := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		auth.RunCleanup(sweepCtx, st, time.Duration(cfg.Auth.CleanupIntervalMs)*time.Millisecond, a.logger(false))
	}()
	return &sweptStore{Store: st, stop: func() { stopSweep(); <-done }}, nil
}

// sweptStore is a key store whose expired and revoked keys are swept in the
// background until it is closed.
type sweptStore struct {
	auth.Store
	stop func()
}

func (s *sweptStore) Close() error {
	s.stop()
	return s.Store.Close()
}

func (a *app) authConn(cfg *config.Config, conn string) string {
	switch {
	case conn != "":
		return conn
	case cfg.Auth.ConnectionString != "":
		return cfg.Auth.ConnectionString
	}
	return a.home + "/.isol8/auth.db"
}

// serveListeners binds the TCP port (all interfaces) and the unix
// sockets. A port in use is an error naming it: a server must not move to
// another port behind its clients' backs.
func (a *app) serveListeners(port int, unixPaths []string) ([]net.Listener, error) {
	tcp, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if errors.Is(err, syscall.EADDRINUSE) && a.interactive() {
		tcp, err = a.choosePort(port)
		if err != nil {
			return nil, err
		}
	}
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, errf("Port %d is already in use. Choose another with --port, ISOL8_PORT or PORT.", port)
		}
		return nil, errf("Cannot listen on port %d: %s", port, err)
	}
	ls := []net.Listener{tcp}
	for _, p := range unixPaths {
		l, err := listenUnix(p)
		if err != nil {
			closeAll(ls)
			return nil, errf("Cannot listen on unix://%s: %s", p, err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

var umaskMu sync.Mutex

// listenUnix makes a socket with mode 0660 (root and the socket's group
// may use it). A stale socket file is replaced; a live one is refused.
func listenUnix(path string) (net.Listener, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, errors.New("another server is listening there")
	}
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, errors.New("the path exists and is not a socket")
		}
		_ = os.Remove(path)
	}
	umaskMu.Lock()
	old := syscall.Umask(0o117)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	umaskMu.Unlock()
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func closeAll(ls []net.Listener) {
	for _, l := range ls {
		l.Close()
	}
}

// interactive reports whether stdin and stdout are both terminals: only
// then is the user asked what to do about a port in use.
func (a *app) interactive() bool {
	out, ok := a.stdout.(*os.File)
	return ok && isTerminal(out) && a.stdinKind != nil && a.stdinKind() == stdinTerminal
}

// choosePort asks the user for another port, or an automatic one, until a
// listener is made or they give up.
func (a *app) choosePort(port int) (net.Listener, error) {
	in := bufio.NewReader(a.stdin)
	ask := func(prompt string) string {
		fmt.Fprint(a.stdout, prompt)
		line, _ := in.ReadString('\n')
		return strings.TrimSpace(line)
	}
	for {
		fmt.Fprintf(a.stderr, "[WARN] Port %d is already in use.\n", port)
		switch ask("Choose: [1] Enter another port  [2] Find an available port  [3] Exit (default: 2): ") {
		case "", "2":
			l, err := net.Listen("tcp", ":0")
			if err != nil {
				return nil, errf("Cannot listen: %s", err)
			}
			fmt.Fprintf(a.stdout, "[INFO] Using available port %d\n", l.Addr().(*net.TCPAddr).Port)
			return l, nil
		case "1":
			raw := ask("Enter port (1-65535): ")
			n, err := strconv.Atoi(raw)
			if err != nil || n < 1 || n > 65535 {
				fmt.Fprintf(a.stderr, "[ERR] Invalid port: %s. Expected 1-65535.\n", raw)
				continue
			}
			l, err := net.Listen("tcp", ":"+strconv.Itoa(n))
			if err == nil {
				return l, nil
			}
			port = n
		case "3":
			return nil, errf("Server startup cancelled.")
		default:
			fmt.Fprintln(a.stderr, "[ERR] Invalid selection. Enter 1, 2, or 3.")
		}
	}
}

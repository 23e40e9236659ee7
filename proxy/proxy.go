// Package proxy is the filtered network's HTTP proxy. The engine serves one
// per filtered sandbox, on a listener inside the sandbox's network namespace
// (127.0.0.1:8118 there), and dials upstream from the host's namespace
// through a netguard.Dialer, so the sandbox reaches nothing but the hosts
// its policy allows.
//
// It takes absolute-URI HTTP requests and CONNECT tunnels. A sandbox's
// policy (allow/deny rules, logging) is attached per execution; between
// executions (a pooled sandbox waiting for its next run) nothing is attached
// and every connection is refused.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/netguard"
)

// Addr is where a sandbox finds the proxy: on its own loopback.
const Addr = "127.0.0.1:8118"

// URL is the proxy's address as the sandbox's HTTP_PROXY.
const URL = "http://" + Addr

// Defaults of Config's zero values.
const (
	DefaultConnectTimeout = 10 * time.Second
	DefaultIdleTimeout    = 5 * time.Minute
	DefaultMaxTunnels     = 64
	DefaultMaxConns       = 256
	// maxEntries bounds the log kept per execution.
	maxEntries = 10000
)

// Config is the operator's part of a proxy, the same for every execution.
type Config struct {
	// Guard is the SSRF guard every upstream destination passes, on the
	// address actually dialled.
	Guard netguard.Policy
	// Resolver looks up upstream names; nil is the system's.
	Resolver netguard.Resolver
	// ConnectTimeout bounds each upstream connect (0: DefaultConnectTimeout).
	ConnectTimeout time.Duration
	// IdleTimeout closes a tunnel or keep-alive connection with no traffic
	// either way for that long.
	IdleTimeout time.Duration
	// MaxTunnels bounds the CONNECT tunnels open at once.
	MaxTunnels int
	// MaxConns bounds the sandbox's connections to the proxy at once.
	MaxConns int
	Logger   *slog.Logger
}

// Policy is what one execution may reach and what is recorded of it.
type Policy struct {
	Rules *Rules
	// Log keeps an entry per request for the result's networkLogs.
	Log bool
	// OnEvent, when set, is called for each security event as it happens
	// (the audit log's hook); events are also kept for the Report.
	OnEvent func(api.SecurityEvent)
	// TrustedHosts are host names the operator vouches for, such as a
	// private package mirror named in the host's own configuration: the
	// SSRF guard lets them resolve to private addresses. The allow/deny
	// rules still apply. Never from a client.
	TrustedHosts []string
}

// Report is what the proxy recorded for one execution.
type Report struct {
	Entries []api.NetworkLogEntry
	Events  []api.SecurityEvent
}

// Server serves one sandbox's proxy listener.
type Server struct {
	cfg    Config
	ln     net.Listener
	http   *http.Server
	conns  chan net.Conn
	done   chan struct{}
	closed sync.Once
	wg     sync.WaitGroup // the accept loop and http.Server.Serve

	mu   sync.Mutex
	sess *session
}

// New starts serving ln. Close stops it and closes ln.
func New(ln net.Listener, cfg Config) *Server {
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxTunnels <= 0 {
		cfg.MaxTunnels = DefaultMaxTunnels
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, ln: ln, conns: make(chan net.Conn), done: make(chan struct{})}
	s.http = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if tc, ok := c.(*trackedConn); ok {
				return context.WithValue(ctx, sessionKey{}, tc.sess)
			}
			return ctx
		},
	}
	s.wg.Add(2)
	go s.acceptLoop()
	go func() {
		defer s.wg.Done()
		_ = s.http.Serve(chanListener{s})
	}()
	return s
}

// Attach sets the policy of the next execution. A policy still attached
// is detached first (its report dropped).
func (s *Server) Attach(p Policy) {
	next := newSession(p)
	next.tr = s.newTransport(next)
	s.mu.Lock()
	prev := s.sess
	s.sess = next
	s.mu.Unlock()
	if prev != nil {
		prev.end()
	}
}

// Detach ends the execution: it refuses new connections, closes every
// connection and tunnel of the execution, waits (briefly) for their
// handlers and returns what was recorded.
func (s *Server) Detach() Report {
	s.mu.Lock()
	prev := s.sess
	s.sess = nil
	s.mu.Unlock()
	if prev == nil {
		return Report{}
	}
	prev.end()
	return prev.report(true)
}

// TakeReport returns what was recorded since the last call (or Attach)
// and keeps the execution's connections: persistent sandboxes keep their
// policy across executions.
func (s *Server) TakeReport() Report {
	s.mu.Lock()
	cur := s.sess
	s.mu.Unlock()
	if cur == nil {
		return Report{}
	}
	return cur.report(false)
}

// Close stops serving, closes the listener and every connection.
func (s *Server) Close() error {
	var err error
	s.closed.Do(func() {
		close(s.done)
		err = s.ln.Close()
		s.Detach()
		_ = s.http.Close()
		s.wg.Wait()
	})
	return err
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.cfg.Logger.Warn("proxy: accept failed", "error", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		s.mu.Lock()
		sess := s.sess
		s.mu.Unlock()
		tc, ok := sess.track(c, s.cfg.MaxConns)
		if !ok {
			// No execution attached (or too many connections): nothing
			// in the sandbox may use the network now.
			_ = c.Close()
			continue
		}
		select {
		case s.conns <- tc:
		case <-s.done:
			_ = tc.Close()
			return
		}
	}
}

// chanListener hands the accept loop's connections to http.Server.
type chanListener struct{ s *Server }

func (l chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.s.conns:
		return c, nil
	case <-l.s.done:
		return nil, net.ErrClosed
	}
}
func (l chanListener) Close() error   { return nil }
func (l chanListener) Addr() net.Addr { return l.s.ln.Addr() }

type sessionKey struct{}

// session is one attached policy and everything done under it.
type session struct {
	pol    Policy
	ctx    context.Context
	cancel context.CancelFunc
	tr     *http.Transport
	// trusted are the normalised TrustedHosts.
	trusted map[string]bool
	wg      sync.WaitGroup // handlers in flight

	mu      sync.Mutex
	ended   bool
	conns   map[*trackedConn]struct{}
	tunnels int
	entries []*api.NetworkLogEntry
	taken   int // entries already returned by report(false)
	events  []api.SecurityEvent
	evTaken int
}

func newSession(p Policy) *session {
	ctx, cancel := context.WithCancel(context.Background())
	ss := &session{pol: p, ctx: ctx, cancel: cancel, conns: map[*trackedConn]struct{}{}, trusted: map[string]bool{}}
	for _, h := range p.TrustedHosts {
		if n, err := netguard.NormalizeHost(h); err == nil {
			ss.trusted[n] = true
		}
	}
	return ss
}

// track registers an accepted connection; false when none may be made.
func (ss *session) track(c net.Conn, max int) (*trackedConn, bool) {
	if ss == nil {
		return nil, false
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.ended || len(ss.conns) >= max {
		return nil, false
	}
	tc := &trackedConn{Conn: c, sess: ss}
	ss.conns[tc] = struct{}{}
	return tc, true
}

// end refuses new work and closes every connection of the session.
func (ss *session) end() {
	ss.mu.Lock()
	if ss.ended {
		ss.mu.Unlock()
		return
	}
	ss.ended = true
	conns := make([]*trackedConn, 0, len(ss.conns))
	for c := range ss.conns {
		conns = append(conns, c)
	}
	ss.mu.Unlock()
	ss.cancel()
	for _, c := range conns {
		_ = c.Conn.Close()
	}
	if ss.tr != nil {
		ss.tr.CloseIdleConnections()
	}
}

// report returns the entries and events recorded (since the last partial
// report). After end it first waits for the handlers, so their entries
// are complete.
func (ss *session) report(final bool) Report {
	if final {
		done := make(chan struct{})
		go func() { ss.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var r Report
	for _, e := range ss.entries[ss.taken:] {
		r.Entries = append(r.Entries, *e)
	}
	r.Events = append(r.Events, ss.events[ss.evTaken:]...)
	ss.taken, ss.evTaken = len(ss.entries), len(ss.events)
	if ss.taken > maxEntries {
		// Keep memory bounded for long persistent sessions.
		ss.entries, ss.taken = nil, 0
	}
	return r
}

// trackedConn is a sandbox connection to the proxy, closed when its
// session ends.
type trackedConn struct {
	net.Conn
	sess *session
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.sess.mu.Lock()
		delete(c.sess.conns, c)
		c.sess.mu.Unlock()
	})
	return c.Conn.Close()
}

// begin starts a log entry; it is kept (when logging) in arrival order.
func (ss *session) begin(method, host string, path *string) *api.NetworkLogEntry {
	e := &api.NetworkLogEntry{
		Timestamp: time.Now().Format("2006-01-02T15:04:05Z07:00"),
		Method:    method, Host: host, Path: path, Action: api.NetworkAllow,
	}
	if ss.pol.Log {
		ss.mu.Lock()
		if len(ss.entries)-ss.taken < maxEntries {
			ss.entries = append(ss.entries, e)
		}
		ss.mu.Unlock()
	}
	return e
}

// finish completes an entry (under the session lock: report may copy it).
func (ss *session) finish(e *api.NetworkLogEntry, t0 time.Time, f func(*api.NetworkLogEntry)) {
	ss.mu.Lock()
	f(e)
	e.DurationMs = time.Since(t0).Milliseconds()
	ss.mu.Unlock()
}

// block records a refusal as a security event.
func (ss *session) block(method, host, reason string) {
	ev := api.SecurityEvent{
		Type:      "network_blocked",
		Message:   "Security event: network_blocked",
		Details:   map[string]string{"method": method, "host": host, "reason": reason},
		Timestamp: time.Now().UTC().Format(time.RFC3339),
	}
	ss.mu.Lock()
	if len(ss.events)-ss.evTaken < maxEntries {
		ss.events = append(ss.events, ev)
	}
	ss.mu.Unlock()
	if ss.pol.OnEvent != nil {
		ss.pol.OnEvent(ev)
	}
}

// dialer returns the guarded dialer for a (normalised) host: the
// operator's guard, opened for the session's trusted hosts.
func (s *Server) dialer(ss *session, host string) *netguard.Dialer {
	pol := s.cfg.Guard
	if ss != nil && ss.trusted[host] {
		pol.AllowPrivateDestinations = true
	}
	return &netguard.Dialer{Policy: pol, Resolver: s.cfg.Resolver, Timeout: s.cfg.ConnectTimeout}
}

// target is a request's destination, checked and normalised.
type target struct {
	host string // normalised
	port string
}

func (t target) hostPort() string { return net.JoinHostPort(t.host, t.port) }

func parseTarget(host, port, defPort string) (target, error) {
	if port == "" {
		port = defPort
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return target{}, fmt.Errorf("invalid port %q", port)
	}
	h, err := netguard.NormalizeHost(host)
	if err != nil {
		return target{}, err
	}
	return target{host: h, port: port}, nil
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	ss, _ := r.Context().Value(sessionKey{}).(*session)
	if ss == nil {
		http.Error(w, "isol8: proxy not ready", http.StatusServiceUnavailable)
		return
	}
	ss.mu.Lock()
	if ss.ended {
		ss.mu.Unlock()
		plainError(w, http.StatusServiceUnavailable, "isol8: proxy not ready")
		return
	}
	ss.wg.Add(1)
	ss.mu.Unlock()
	defer ss.wg.Done()
	if r.Method == http.MethodConnect {
		s.serveConnect(ss, w, r)
		return
	}
	s.serveForward(ss, w, r)
}

// plainError answers with a text/plain body exactly as given.
func plainError(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", "text/plain")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// guardReason describes a netguard refusal for logs and events.
func guardReason(err error) (string, bool) {
	var be *netguard.BlockedError
	if errors.As(err, &be) {
		return "private destination (" + be.Reason + ")", true
	}
	return "", false
}

// CloseWrite half-closes a TCP connection, so a tunnel passes on the end
// of one direction while the other still flows.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

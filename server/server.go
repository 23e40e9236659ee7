// Package server is isol8's REST server: the routes of the remote API
// (execute, streamed over SSE and WebSocket, sessions, files, cleanup, API
// keys) on a shared engine Host, with authentication, a bounded queue in
// front of the global concurrency limit, idle-session pruning, request
// logs and Prometheus metrics.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/audit"
	"github.com/isol8/isol8/config"
	"github.com/isol8/isol8/engine"
)

// Options configure a Server.
type Options struct {
	// Host runs every execution; the caller starts and stops it.
	Host *engine.Host
	// MasterKey authenticates as the operator (required).
	MasterKey string
	// Keys, when set, enables DB-backed API keys and the /auth routes.
	Keys KeyStore
	// Config holds the execution defaults, pool policy, pruning and the
	// server section; nil means config.Defaults().
	Config *config.Config
	// Logger receives request logs and debug traces; nil discards them.
	Logger *slog.Logger
	// PruneInterval is how often idle sessions are looked for (0: 60 s).
	PruneInterval time.Duration
	// Registerer receives the server's metrics; nil means a registry of
	// the server's own (served at /metrics either way).
	Registerer prometheus.Registerer
	// Gatherer is what /metrics serves; nil means the server's registry.
	Gatherer prometheus.Gatherer
	// WSIdleTimeout closes a WebSocket that sent no execute message for
	// this long (0: 2 minutes).
	WSIdleTimeout time.Duration
	// SSEKeepAlive is how often a silent event stream gets a comment line
	// (0: 15 s).
	SSEKeepAlive time.Duration
	// Audit is the host's audit log, if any: its dropped records are
	// exported in /metrics (the host writes the records).
	Audit *audit.Logger
}

// Server serves the REST API. Close it (before stopping its Host) to
// stop its sessions and pruning.
type Server struct {
	opts     Options
	cfg      *config.Config
	log      *slog.Logger
	router   *gin.Engine
	queue    *queue
	sessions *sessions
	views    *viewCache
	metrics  *metrics

	closeOnce sync.Once
	stop      chan struct{}
	bg        sync.WaitGroup
	cleanMu   sync.Mutex // one /cleanup at a time
}

// New validates o and returns a server; its pruning starts at once.
func New(o Options) (*Server, error) {
	if o.Host == nil {
		return nil, api.InvalidArgumentf("server: no engine host")
	}
	if o.MasterKey == "" {
		return nil, api.InvalidArgumentf("API key required. Use --key or ISOL8_API_KEY env var.")
	}
	cfg := o.Config
	if cfg == nil {
		cfg = config.Defaults()
	}
	if o.PruneInterval <= 0 {
		o.PruneInterval = time.Minute
	}
	if o.SSEKeepAlive <= 0 {
		o.SSEKeepAlive = 15 * time.Second
	}
	if o.WSIdleTimeout <= 0 {
		o.WSIdleTimeout = 2 * time.Minute
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts:     o,
		cfg:      cfg,
		log:      log,
		queue:    newQueue(cfg.MaxConcurrent, cfg.Server.MaxQueue, time.Duration(cfg.Server.QueueTimeoutMs)*time.Millisecond),
		sessions: newSessions(cfg.Server.MaxSessions),
		views:    newViewCache(o.Host, 32),
		stop:     make(chan struct{}),
	}
	m, err := newMetrics(o.Registerer, o.Gatherer, s)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.router = s.routes()
	if cfg.Cleanup.AutoPrune {
		s.bg.Add(1)
		go s.pruneLoop()
	}
	return s, nil
}

// Handler returns the HTTP handler of every route.
func (s *Server) Handler() http.Handler { return s.router }

// Close stops pruning and every session and cached engine view of the
// server (their sandboxes are removed), waiting for work in flight until
// ctx ends, then closes the key store. The Host stays for its owner to
// stop. Close is idempotent.
func (s *Server) Close(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stop)
		s.bg.Wait()
		s.sessions.stopAll(ctx, s.log)
		s.views.stopAll(ctx)
		if s.opts.Keys != nil {
			err = s.opts.Keys.Close()
		}
	})
	return err
}

func (s *Server) routes() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	// The logged client address is the peer's: forwarded-for headers are
	// not trusted (an operator's proxy logs its own).
	_ = r.SetTrustedProxies(nil)
	r.Use(s.requestLog, s.recover, s.authenticate)
	r.NoRoute(func(c *gin.Context) { fail(c, http.StatusNotFound, "Not found") })
	r.NoMethod(func(c *gin.Context) { fail(c, http.StatusMethodNotAllowed, "Method not allowed") })

	r.GET("/health", s.health)
	r.GET("/openapi.json", s.openAPI)
	r.GET("/metrics", s.metrics.handler)
	r.POST("/execute", s.execute)
	r.POST("/execute/stream", s.executeSSE)
	r.GET("/execute/ws", s.executeWS)
	r.GET("/sessions", s.listSessions)
	r.DELETE("/session/:id", s.deleteSession)
	r.POST("/file", s.putFile)
	r.GET("/file", s.getFile)
	r.POST("/cleanup", s.cleanup)

	a := r.Group("/auth", s.requireMaster)
	a.POST("/keys", s.createKey)
	a.GET("/keys", s.listKeys)
	a.DELETE("/keys/:id", s.revokeKey)
	a.POST("/login", s.login)
	return r
}

func (s *Server) health(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok", "version": api.Version})
}

// fail answers with a JSON error and stops the handler chain.
func fail(c *gin.Context, status int, msg string) {
	c.AbortWithStatusJSON(status, gin.H{"error": msg})
}

// failErr answers with the status of err's class and its message.
func failErr(c *gin.Context, err error) {
	status := statusOf(err)
	if status == http.StatusTooManyRequests {
		c.Header("Retry-After", "1")
	}
	fail(c, status, err.Error())
}

// statusOf maps an error class to an HTTP status.
func statusOf(err error) int {
	switch {
	case api.IsInvalidArgument(err):
		return http.StatusBadRequest
	case api.IsNotFound(err):
		return http.StatusNotFound
	case api.IsPermissionDenied(err):
		return http.StatusForbidden
	case api.IsConflict(err), api.IsFailedPrecondition(err):
		return http.StatusConflict
	case api.IsExhausted(err):
		return http.StatusTooManyRequests
	case api.IsDeadline(err):
		return http.StatusRequestTimeout
	case api.IsUnavailable(err):
		return http.StatusServiceUnavailable
	case api.IsNotImplemented(err):
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}

func (s *Server) recover(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			s.log.Error("handler panic", "path", c.Request.URL.Path, "panic", r, "requestId", c.GetString(ctxRequestID))
			if !c.Writer.Written() {
				fail(c, http.StatusInternalServerError, "Internal server error")
			}
		}
	}()
	c.Next()
}

// Prewarm fills the warm pools of the default options for runtimes, so
// the first ephemeral requests (and CLI runs through a local daemon) are
// warm too.
func (s *Server) Prewarm(ctx context.Context, runtimes ...string) error {
	if len(runtimes) == 0 {
		return nil
	}
	eng, done, err := s.views.get(engineOptions(s.cfg, nil, false))
	if err != nil {
		return err
	}
	defer done()
	return eng.Prewarm(ctx, runtimes...)
}

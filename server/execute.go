package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/engine"
)

// envelope is the body of the execute routes (and the WS execute message).
type envelope struct {
	Request   *api.Request `json:"request"`
	Options   *api.Options `json:"options"`
	SessionID string       `json:"sessionId"`
}

// maxSessionID bounds session ids (they are map keys and log fields).
const maxSessionID = 256

// run is one admitted execution: its engine and what ends it.
type run struct {
	eng       *engine.Engine
	sessionID string
	runtime   string
	start     time.Time
	release   func()
}

// admit resolves the engine of an execution (the caller's session, made
// on first use, or a cached ephemeral view) and takes a slot of the global
// limit. The returned run must be finished.
func (s *Server) admit(ctx context.Context, cl caller, env *envelope) (*run, error) {
	if env.Request == nil {
		return nil, api.InvalidArgumentf("request is required")
	}
	sid := env.SessionID
	if len(sid) > maxSessionID {
		return nil, api.InvalidArgumentf("sessionId must be at most %d bytes", maxSessionID)
	}
	s.log.Debug(fmt.Sprintf("[Server] execute runtime=%s sessionId=%s", env.Request.Runtime, orEphemeral(sid)),
		"codeLength", len(env.Request.Code), "cmdLength", len(env.Request.Cmd))
	r := &run{sessionID: sid, runtime: env.Request.Runtime, start: time.Now()}
	var done func()
	if sid != "" {
		sess, created, err := s.sessions.acquire(sid, cl, func() (*engine.Engine, error) {
			return s.opts.Host.Session(engineOptions(s.cfg, env.Options, true))
		})
		if err != nil {
			return nil, err
		}
		if created {
			s.log.Debug("[Server] Created session", "sessionId", sid)
		} else {
			s.log.Debug("[Server] Reusing session", "sessionId", sid)
		}
		r.eng, done = sess.eng, func() { s.sessions.release(sess) }
	} else {
		eng, end, err := s.views.get(engineOptions(s.cfg, env.Options, false))
		if err != nil {
			return nil, err
		}
		r.eng, done = eng, end
	}
	free, err := s.queue.acquire(ctx)
	if err != nil {
		done()
		switch {
		case api.IsExhausted(err):
			s.metrics.rejected("queue_full")
		case api.IsDeadline(err):
			s.metrics.rejected("queue_timeout")
		}
		return nil, err
	}
	waiting, running := s.queue.depth()
	s.log.Debug("[Server] Semaphore acquired", "waiting", waiting, "running", running)
	r.release = func() {
		free()
		done()
		w, n := s.queue.depth()
		s.log.Debug("[Server] Semaphore released", "waiting", w, "running", n)
	}
	return r, nil
}

func orEphemeral(id string) string {
	if id == "" {
		return "ephemeral"
	}
	return id
}

// finish records the outcome of r and releases it.
func (s *Server) finish(r *run, outcome string, exitCode int) {
	r.release()
	s.metrics.executed(r.runtime, outcome, time.Since(r.start))
	s.log.Debug(fmt.Sprintf("[Server] execution done runtime=%s sessionId=%s", r.runtime, orEphemeral(r.sessionID)),
		"outcome", outcome, "exitCode", exitCode, "durationMs", time.Since(r.start).Milliseconds())
}

func outcomeOf(exit int, err error) string {
	switch {
	case err != nil:
		return "error"
	case exit == 0:
		return "ok"
	}
	return "nonzero"
}

// admitHTTP binds an HTTP request's envelope and admits it; on failure the
// error is answered and ok is false.
func (s *Server) admitHTTP(c *gin.Context) (env envelope, r *run, ok bool) {
	if !s.bind(c, &env, false) {
		return env, nil, false
	}
	r, err := s.admit(c.Request.Context(), callerOf(c), &env)
	if err != nil {
		failErr(c, err)
		return env, nil, false
	}
	return env, r, true
}

func (s *Server) execute(c *gin.Context) {
	env, r, ok := s.admitHTTP(c)
	if !ok {
		return
	}
	res, err := r.eng.Execute(c.Request.Context(), *env.Request)
	exit := 0
	if res != nil {
		exit = res.ExitCode
	}
	s.finish(r, outcomeOf(exit, err), exit)
	if err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

// executeSSE streams the events as server-sent events. Errors found before
// the stream starts (bad body, auth, a full queue) are HTTP errors; an
// execution that fails afterwards (validation included, as in the
// reference) ends the stream with an error event.
func (s *Server) executeSSE(c *gin.Context) {
	env, r, ok := s.admitHTTP(c)
	if !ok {
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	var mu sync.Mutex
	write := func(frame string) error {
		mu.Lock()
		defer mu.Unlock()
		if _, err := io.WriteString(c.Writer, frame); err != nil {
			return err
		}
		c.Writer.Flush()
		return nil
	}
	send := func(ev api.Event) error {
		data, _ := json.Marshal(ev)
		return write("data: " + string(data) + "\n\n")
	}
	// A comment line now and then keeps proxies from closing a stream
	// whose program is silent; clients read only "data: " lines.
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(s.opts.SSEKeepAlive)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = write(": keep-alive\n\n")
			}
		}
	}()
	exit, err := s.stream(c.Request.Context(), r, *env.Request, nil, send)
	close(done)
	wg.Wait() // nothing is written after the handler returns
	s.finish(r, outcomeOf(exit, err), exit)
}

// stream runs req on r's engine and hands every event to send; an error
// before the first event becomes a final error event. It returns the exit
// code and the execution error, if any.
func (s *Server) stream(ctx context.Context, r *run, req api.Request, in *engine.Input, send func(api.Event) error) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var events <-chan api.Event
	var err error
	if in != nil {
		events, err = r.eng.ExecuteInteractive(ctx, req, in)
	} else {
		events, err = r.eng.ExecuteStream(ctx, req)
	}
	if err != nil {
		_ = send(api.Event{Type: api.EventError, Data: err.Error()})
		return 1, err
	}
	exit := 0
	var failed error
	for ev := range events {
		switch ev.Type {
		case api.EventExit:
			exit, _ = strconv.Atoi(ev.Data)
		case api.EventError:
			failed = errors.New(ev.Data)
		}
		if err := send(ev); err != nil {
			cancel() // the client went away: end the program
			for range events {
			}
			return exit, err
		}
	}
	if failed != nil && exit == 0 {
		exit = 1
	}
	return exit, nil
}

func (s *Server) listSessions(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"sessions": s.sessions.list(callerOf(c))})
}

// deleteSession stops the caller's session. It always answers ok, for
// unknown ids (and other tenants' sessions, which stay) too.
func (s *Server) deleteSession(c *gin.Context) {
	if sess := s.sessions.remove(c.Param("id"), callerOf(c)); sess != nil {
		ctx, cancel := context.WithTimeout(c.Request.Context(), 30*time.Second)
		defer cancel()
		if err := sess.eng.Stop(ctx); err != nil {
			s.log.Warn("session stop failed", "sessionId", sess.id, "error", err)
		}
		s.log.Debug("[Server] Session destroyed", "sessionId", sess.id)
	}
	c.JSON(http.StatusOK, gin.H{"ok": true})
}

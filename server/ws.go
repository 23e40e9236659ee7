package server

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/gin-gonic/gin"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/engine"
)

// wsMessage is a client frame of /execute/ws.
type wsMessage struct {
	Type      string       `json:"type"`
	Request   *api.Request `json:"request"`
	Options   *api.Options `json:"options"`
	SessionID string       `json:"sessionId"`
	Data      string       `json:"data"`
	Signal    string       `json:"signal"`
	// Interactive keeps the program's stdin open for stdin messages until
	// a stdin_eof message; without it the program reads request.stdin and
	// then EOF, as over the other transports.
	Interactive bool `json:"interactive"`
}

// executeWS serves one execution over a WebSocket: the client sends an
// execute message, then any stdin and signal messages while the program
// runs; the server sends the execution's events and closes with 1000 when
// it ends. Authentication happened before the upgrade.
func (s *Server) executeWS(c *gin.Context) {
	conn, err := websocket.Accept(c.Writer, c.Request, nil)
	if err != nil {
		return // Accept answered the failed handshake
	}
	conn.SetReadLimit(s.cfg.Server.MaxBodyBytes)
	w := &wsConn{conn: conn}
	ctx, cancel := context.WithCancel(context.WithoutCancel(c.Request.Context()))
	defer cancel()
	cl := callerOf(c)

	var (
		in      *engine.Input
		running bool
		done    = make(chan struct{})
	)
	for {
		readCtx, stopRead := ctx, context.CancelFunc(func() {})
		if !running {
			// A connection that never asks for an execution is closed.
			readCtx, stopRead = context.WithTimeout(ctx, s.opts.WSIdleTimeout)
		}
		typ, data, err := conn.Read(readCtx)
		stopRead()
		if err != nil {
			cancel() // the client left (or closed): end the program
			if running {
				<-done
			}
			return
		}
		var msg wsMessage
		if typ != websocket.MessageText || json.Unmarshal(data, &msg) != nil {
			s.metrics.rejected("ws_invalid_json")
			w.send(ctx, api.Event{Type: api.EventError, Data: "Invalid JSON message"})
			w.close(websocket.StatusUnsupportedData, "Invalid JSON")
			cancel()
			if running {
				<-done
			}
			return
		}
		switch msg.Type {
		case "execute":
			if running {
				w.send(ctx, api.Event{Type: api.EventError, Data: "An execution is already running on this connection"})
				continue
			}
			running = true
			in = engine.NewInput()
			if !msg.Interactive {
				_ = in.CloseStdin(ctx)
			}
			go func() {
				defer close(done)
				s.wsExecute(ctx, w, cl, &envelope{Request: msg.Request, Options: msg.Options, SessionID: msg.SessionID}, in)
				w.close(websocket.StatusNormalClosure, "Execution complete")
				cancel()
			}()
		case "stdin":
			if in != nil {
				if err := in.Write(ctx, []byte(msg.Data)); err != nil {
					w.send(ctx, api.Event{Type: api.EventError, Data: err.Error()})
				}
			}
		case "stdin_eof", "eof":
			if in != nil {
				_ = in.CloseStdin(ctx)
			}
		case "signal":
			if in != nil {
				if err := in.Signal(ctx, msg.Signal); err != nil {
					w.send(ctx, api.Event{Type: api.EventError, Data: err.Error()})
				}
			}
		default:
			w.send(ctx, api.Event{Type: api.EventError, Data: "Unknown message type: " + msg.Type})
		}
	}
}

func (s *Server) wsExecute(ctx context.Context, w *wsConn, cl caller, env *envelope, in *engine.Input) {
	r, err := s.admit(ctx, cl, env)
	if err != nil {
		w.send(ctx, api.Event{Type: api.EventError, Data: err.Error()})
		return
	}
	exit, err := s.stream(ctx, r, *env.Request, in, func(ev api.Event) error { return w.send(ctx, ev) })
	s.finish(r, outcomeOf(exit, err), exit)
}

// wsConn serialises writes and closes one connection once.
type wsConn struct {
	conn *websocket.Conn
	mu   sync.Mutex
	once sync.Once
}

func (w *wsConn) send(ctx context.Context, ev api.Event) error {
	data, _ := json.Marshal(ev)
	w.mu.Lock()
	defer w.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return w.conn.Write(ctx, websocket.MessageText, data)
}

func (w *wsConn) close(code websocket.StatusCode, reason string) {
	w.once.Do(func() { _ = w.conn.Close(code, reason) })
}

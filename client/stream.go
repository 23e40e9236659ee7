package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/isol8/isol8/api"
)

// ExecuteStream runs req and delivers its events as they happen, over a
// WebSocket when the server offers one and server-sent events otherwise
// (decided once per client, by the first stream). Cancelling ctx closes
// the connection, which ends the program on the server.
func (c *Client) ExecuteStream(ctx context.Context, req api.Request) (<-chan api.Event, error) {
	return c.stream(ctx, req, nil)
}

// Input feeds a remote streamed execution: stdin data, end of stdin and
// signals (SIGINT, SIGTERM, SIGKILL). It needs the WebSocket transport.
type Input struct {
	ch chan any
}

// NewInput returns an Input for ExecuteInteractive.
func NewInput() *Input { return &Input{ch: make(chan any, 64)} }

type wsStdin struct {
	Type string `json:"type"`
	Data string `json:"data,omitempty"`
}

type wsSignal struct {
	Type   string `json:"type"`
	Signal string `json:"signal"`
}

// Write sends stdin data.
func (in *Input) Write(ctx context.Context, data []byte) error {
	return in.send(ctx, wsStdin{Type: "stdin", Data: string(data)})
}

// CloseStdin ends the program's stdin.
func (in *Input) CloseStdin(ctx context.Context) error {
	return in.send(ctx, wsStdin{Type: "stdin_eof"})
}

// Signal sends a signal to the program's process group.
func (in *Input) Signal(ctx context.Context, sig string) error {
	return in.send(ctx, wsSignal{Type: "signal", Signal: sig})
}

func (in *Input) send(ctx context.Context, m any) error {
	select {
	case in.ch <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ExecuteInteractive is ExecuteStream with an Input; it always uses the
// WebSocket transport.
func (c *Client) ExecuteInteractive(ctx context.Context, req api.Request, in *Input) (<-chan api.Event, error) {
	return c.stream(ctx, req, in)
}

func (c *Client) stream(ctx context.Context, req api.Request, in *Input) (<-chan api.Event, error) {
	c.mu.Lock()
	tryWS := c.wsAvailable == nil || *c.wsAvailable || in != nil
	c.mu.Unlock()
	if tryWS {
		conn, err := c.dialWS(ctx)
		if err == nil {
			c.setWS(true)
			return c.wsStream(ctx, conn, req, in), nil
		}
		var refused *refusal
		if errors.As(err, &refused) || ctx.Err() != nil || in != nil {
			return nil, err
		}
		c.setWS(false) // no WebSocket here: server-sent events from now on
	}
	return c.sseStream(ctx, req)
}

func (c *Client) setWS(ok bool) {
	c.mu.Lock()
	c.wsAvailable = &ok
	c.mu.Unlock()
}

// refusal is a handshake the server refused on purpose (auth, a full
// queue): falling back to SSE would not help.
type refusal struct{ err error }

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

func (c *Client) dialWS(ctx context.Context) (*websocket.Conn, error) {
	h := http.Header{}
	c.headers(h)
	h.Del("Content-Type")
	conn, resp, err := websocket.Dial(ctx, c.WebSocketURL(), &websocket.DialOptions{HTTPClient: c.hc, HTTPHeader: h})
	if err != nil {
		if resp != nil {
			switch resp.StatusCode {
			case http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests, http.StatusServiceUnavailable:
				return nil, &refusal{httpError(resp, "Stream failed")}
			}
		}
		return nil, err
	}
	conn.SetReadLimit(64 << 20)
	return conn, nil
}

func (c *Client) wsStream(ctx context.Context, conn *websocket.Conn, req api.Request, in *Input) <-chan api.Event {
	ch := make(chan api.Event, 64)
	go func() {
		defer close(ch)
		defer conn.CloseNow()
		msg := c.envelope(req)
		msg.Type = "execute"
		msg.Interactive = in != nil
		if err := writeJSON(ctx, conn, msg); err != nil {
			emit(ctx, ch, api.Event{Type: api.EventError, Data: "WebSocket connection failed"})
			return
		}
		if in != nil {
			inCtx, stop := context.WithCancel(ctx)
			defer stop()
			go func() {
				for {
					select {
					case m := <-in.ch:
						if writeJSON(inCtx, conn, m) != nil {
							return
						}
					case <-inCtx.Done():
						return
					}
				}
			}()
		}
		for {
			_, data, err := conn.Read(ctx)
			if err != nil {
				if websocket.CloseStatus(err) == -1 && ctx.Err() == nil {
					emit(ctx, ch, api.Event{Type: api.EventError, Data: "WebSocket connection failed"})
				}
				if ctx.Err() != nil {
					conn.Close(websocket.StatusNormalClosure, "cancelled")
				}
				return
			}
			var ev api.Event
			if json.Unmarshal(data, &ev) != nil {
				continue // not an event: ignored
			}
			if !emit(ctx, ch, ev) {
				return
			}
		}
	}()
	return ch
}

func writeJSON(ctx context.Context, conn *websocket.Conn, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return conn.Write(ctx, websocket.MessageText, data)
}

func emit(ctx context.Context, ch chan<- api.Event, ev api.Event) bool {
	select {
	case ch <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

func (c *Client) sseStream(ctx context.Context, req api.Request) (<-chan api.Event, error) {
	resp, err := c.do(ctx, "POST", "/execute/stream", c.envelope(req))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, httpError(resp, "Stream failed")
	}
	if resp.Body == nil {
		return nil, fmt.Errorf("No response body for streaming")
	}
	ch := make(chan api.Event, 64)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 64<<20)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var ev api.Event
			if json.Unmarshal([]byte(data), &ev) != nil {
				continue
			}
			if !emit(ctx, ch, ev) {
				return
			}
		}
	}()
	return ch, nil
}

// Package client is the Go client of an isol8 server: an engine (the
// isol8.Engine interface) whose executions run remotely, over HTTP,
// server-sent events and WebSocket. It imports no container code, so
// programs that only call a server stay small.
package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/isol8/isol8/api"
)

// Options configure a Client.
type Options struct {
	// Host is the server: http(s)://host[:port] or unix:///path/to.sock.
	Host string
	// APIKey is sent as a bearer token.
	APIKey string
	// SessionID, when set, runs every execution in that persistent
	// session; Stop then deletes it.
	SessionID string
	// Options are sent with every execution (nil: the server's defaults).
	Options *api.Options
	// HTTPClient overrides the transport (nil: one made for Host).
	HTTPClient *http.Client
}

// Client talks to one server. It is safe for concurrent use.
type Client struct {
	o    Options
	base string // http://… base URL ("http://unix" for sockets)
	ws   string // ws://… base URL
	hc   *http.Client

	mu          sync.Mutex
	wsAvailable *bool // unknown until the first stream
}

// New checks o and returns a client; nothing is sent until a call.
func New(o Options) (*Client, error) {
	host := strings.TrimSuffix(o.Host, "/")
	c := &Client{o: o, hc: o.HTTPClient}
	switch {
	case strings.HasPrefix(host, "unix://"):
		path := strings.TrimPrefix(host, "unix://")
		if path == "" {
			return nil, api.InvalidArgumentf("Invalid host: %s. Expected unix:///path/to/socket", o.Host)
		}
		if c.hc == nil {
			var d net.Dialer
			c.hc = &http.Client{Transport: &http.Transport{
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					return d.DialContext(ctx, "unix", path)
				},
				MaxIdleConnsPerHost: 16,
			}}
		}
		c.base, c.ws = "http://unix", "ws://unix"
	case strings.HasPrefix(host, "http://"), strings.HasPrefix(host, "https://"):
		u, err := url.Parse(host)
		if err != nil || u.Host == "" {
			return nil, api.InvalidArgumentf("Invalid host: %s", o.Host)
		}
		c.base = host
		c.ws = "ws" + strings.TrimPrefix(host, "http")
	default:
		return nil, api.InvalidArgumentf("Invalid host: %s. Expected http://, https:// or unix://", o.Host)
	}
	if c.hc == nil {
		c.hc = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, Proxy: http.ProxyFromEnvironment}}
	}
	return c, nil
}

// WebSocketURL is the URL streams are tried on first.
func (c *Client) WebSocketURL() string { return c.ws + "/execute/ws" }

// envelope is the body of the execute routes.
type envelope struct {
	Type      string       `json:"type,omitempty"`
	Request   api.Request  `json:"request"`
	Options   *api.Options `json:"options,omitempty"`
	SessionID string       `json:"sessionId,omitempty"`
	// Interactive (WebSocket only) keeps stdin open for Input's data.
	Interactive bool `json:"interactive,omitempty"`
}

func (c *Client) envelope(req api.Request) envelope {
	return envelope{Request: req, Options: c.o.Options, SessionID: c.o.SessionID}
}

// Start checks that the server answers.
func (c *Client) Start(ctx context.Context, _ api.StartOptions) error {
	resp, err := c.do(ctx, "GET", "/health", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return classed(resp.StatusCode, fmt.Errorf("Remote server health check failed: %d", resp.StatusCode))
	}
	return nil
}

// Stop deletes the client's session, if any.
func (c *Client) Stop(ctx context.Context) error {
	if c.o.SessionID == "" {
		return nil
	}
	return c.DeleteSession(ctx, c.o.SessionID)
}

// Execute runs req to completion on the server.
func (c *Client) Execute(ctx context.Context, req api.Request) (*api.Result, error) {
	var res api.Result
	if err := c.call(ctx, "POST", "/execute", c.envelope(req), &res, "Execution failed"); err != nil {
		return nil, err
	}
	return &res, nil
}

// PutFile writes a file into the session's sandbox.
func (c *Client) PutFile(ctx context.Context, path string, data []byte) error {
	if c.o.SessionID == "" {
		return api.FailedPreconditionf("File operations require a sessionId (persistent mode)")
	}
	body := map[string]string{"sessionId": c.o.SessionID, "path": path, "content": base64.StdEncoding.EncodeToString(data)}
	return c.call(ctx, "POST", "/file", body, nil, "File upload failed")
}

// GetFile reads a file from the session's sandbox.
func (c *Client) GetFile(ctx context.Context, path string) ([]byte, error) {
	if c.o.SessionID == "" {
		return nil, api.FailedPreconditionf("File operations require a sessionId (persistent mode)")
	}
	q := url.Values{"sessionId": {c.o.SessionID}, "path": {path}}
	var out struct {
		Content string `json:"content"`
	}
	if err := c.call(ctx, "GET", "/file?"+q.Encode(), nil, &out, "File download failed"); err != nil {
		return nil, err
	}
	data, err := base64.StdEncoding.DecodeString(out.Content)
	if err != nil {
		return nil, fmt.Errorf("File download failed: %w", err)
	}
	return data, nil
}

// Session is one entry of ListSessions.
type Session struct {
	ID             string `json:"id"`
	IsActive       bool   `json:"isActive"`
	LastAccessedAt string `json:"lastAccessedAt"`
}

// ListSessions returns the caller's sessions.
func (c *Client) ListSessions(ctx context.Context) ([]Session, error) {
	var out struct {
		Sessions []Session `json:"sessions"`
	}
	if err := c.call(ctx, "GET", "/sessions", nil, &out, "Failed to list sessions"); err != nil {
		return nil, err
	}
	return out.Sessions, nil
}

// DeleteSession destroys a session (unknown ids included).
func (c *Client) DeleteSession(ctx context.Context, id string) error {
	return c.call(ctx, "DELETE", "/session/"+url.PathEscape(id), nil, nil, "Failed to delete session")
}

// call sends a JSON request and decodes a 2xx answer into out; other
// answers become errors "<what>: <server error>" of the status's class.
func (c *Client) call(ctx context.Context, method, path string, body, out any, what string) error {
	resp, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return httpError(resp, what)
	}
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s: bad answer: %w", what, err)
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	c.headers(req.Header)
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, api.Unavailable(fmt.Errorf("Cannot reach %s: %w", c.o.Host, errors.Unwrap(err)))
	}
	return resp, nil
}

func (c *Client) headers(h http.Header) {
	h.Set("Content-Type", "application/json")
	h.Set("Authorization", "Bearer "+c.o.APIKey)
}

// httpError reads a non-2xx answer: the server's {"error"} message, else
// the status text, classed by status.
func httpError(resp *http.Response, what string) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e struct {
		Error string `json:"error"`
	}
	msg := http.StatusText(resp.StatusCode)
	if json.Unmarshal(data, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	return classed(resp.StatusCode, fmt.Errorf("%s: %s", what, msg))
}

// classed marks err with the class of an HTTP status.
func classed(status int, err error) error {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return api.InvalidArgument(err)
	case http.StatusUnauthorized, http.StatusForbidden:
		return api.PermissionDenied(err)
	case http.StatusNotFound:
		return api.NotFound(err)
	case http.StatusConflict:
		return api.FailedPrecondition(err)
	case http.StatusTooManyRequests:
		return api.Exhausted(err)
	case http.StatusRequestTimeout, http.StatusGatewayTimeout:
		return api.Deadline(err)
	case http.StatusServiceUnavailable:
		return api.Unavailable(err)
	case http.StatusNotImplemented:
		return api.NotImplemented(err)
	}
	return err
}

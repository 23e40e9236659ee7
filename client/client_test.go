package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/isol8/isol8"
	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/client"
)

// The client is an isol8.Engine.
var _ isol8.Engine = (*client.Client)(nil)

func TestWebSocketURL(t *testing.T) {
	for host, want := range map[string]string{
		"http://localhost:9900":  "ws://localhost:9900/execute/ws",
		"https://example.com/":   "wss://example.com/execute/ws",
		"unix:///run/isol8.sock": "ws://unix/execute/ws",
	} {
		c, err := client.New(client.Options{Host: host})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.WebSocketURL(); got != want {
			t.Errorf("%s: %s, want %s", host, got, want)
		}
	}
	for _, bad := range []string{"", "localhost:3000", "ftp://x", "unix://"} {
		if _, err := client.New(client.Options{Host: bad}); !api.IsInvalidArgument(err) {
			t.Errorf("host %q: %v", bad, err)
		}
	}
}

func TestFileOpsNeedSession(t *testing.T) {
	c, _ := client.New(client.Options{Host: "http://127.0.0.1:1"})
	want := "File operations require a sessionId (persistent mode)"
	if err := c.PutFile(context.Background(), "/sandbox/x", nil); err == nil || err.Error() != want {
		t.Fatal(err)
	}
	if _, err := c.GetFile(context.Background(), "/sandbox/x"); err == nil || err.Error() != want {
		t.Fatal(err)
	}
}

// Against a server without WebSocket support the first stream falls back
// to SSE in the same call; later calls go straight to SSE.
func TestSSEFallback(t *testing.T) {
	var wsTries, sseCalls int
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/execute/ws":
			wsTries++
			http.NotFound(w, r)
		case "/execute/stream":
			sseCalls++
			w.Header().Set("Content-Type", "text/event-stream")
			w.Write([]byte("data: {\"type\":\"stdout\",\"data\":\"hi\\n\"}\n\n: keep-alive\n\ndata: not json\n\ndata: {\"type\":\"exit\",\"data\":\"0\"}"))
		case "/health":
			w.WriteHeader(503)
		}
	}))
	defer ts.Close()
	c, _ := client.New(client.Options{Host: ts.URL, APIKey: "k"})
	for i := 0; i < 2; i++ {
		ch, err := c.ExecuteStream(context.Background(), api.Request{Runtime: "python", Code: "print('hi')"})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for ev := range ch {
			got = append(got, ev.Type+":"+ev.Data)
		}
		if strings.Join(got, ",") != "stdout:hi\n,exit:0" {
			t.Fatalf("events %q", got)
		}
	}
	if wsTries != 1 || sseCalls != 2 {
		t.Fatalf("ws tries %d, sse calls %d", wsTries, sseCalls)
	}
	if err := c.Start(context.Background(), api.StartOptions{}); err == nil || err.Error() != "Remote server health check failed: 503" {
		t.Fatalf("Start: %v", err)
	}
}

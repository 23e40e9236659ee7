package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/isol8/isol8/config"
)

func TestExecuteRoute(t *testing.T) {
	ts := newTestServer(t, nil)
	r := ts.do("POST", "/execute", testMaster, ex("python", `print("Hello Remote")`))
	res := r.json(t)
	if r.status != 200 || res["stdout"] != "Hello Remote" || res["exitCode"] != 0.0 || res["runtime"] != "python" {
		t.Fatalf("execute: %d %s", r.status, r.body)
	}
	r = ts.do("POST", "/execute", testMaster, ex("bash", "echo out; echo err >&2; exit 3"))
	if res := r.json(t); res["stdout"] != "out" || res["stderr"] != "err" || res["exitCode"] != 3.0 {
		t.Fatalf("exit 3: %s", r.body)
	}
	bad := map[string]any{"request": map[string]any{"runtime": "python", "code": "1", "workdir": "/etc"}}
	ts.do("POST", "/execute", testMaster, bad).wantError(t, 400, "Working directory must be inside /sandbox")
	ts.do("POST", "/execute", testMaster, ex("cobol", "1")).wantError(t, 400,
		`Unknown runtime: "cobol". Available: python, node, bun, bash, deno, agent`)
	// Operator-only options in a client's JSON are ignored by construction:
	// a persist request leaves nothing behind, a custom profile path is
	// never read.
	env := ex("bash", "echo ok")
	env["options"] = map[string]any{"persist": true, "security": map[string]any{"customProfilePath": "/etc/shadow"},
		"remoteCode": map[string]any{"enabled": true}, "timeoutMs": 5000, "network": "none"}
	if r := ts.do("POST", "/execute", testMaster, env); r.json(t)["stdout"] != "ok" {
		t.Fatalf("options: %s", r.body)
	}
	// A remote code URL is refused whatever the client asks.
	url := map[string]any{"request": map[string]any{"runtime": "python", "codeUrl": "https://example.com/x.py"},
		"options": map[string]any{"remoteCode": map[string]any{"enabled": true, "allowedHosts": []string{".*"}}}}
	if r := ts.do("POST", "/execute", testMaster, url); r.status < 400 || r.status >= 500 {
		t.Fatalf("codeUrl: %d %s", r.status, r.body)
	}
	m := string(ts.do("GET", "/metrics", testMaster, nil).body)
	for _, want := range []string{`isol8_executions_total{outcome="ok",runtime="python"} 1`, `isol8_executions_total{outcome="nonzero",runtime="bash"} 1`,
		`isol8_execution_duration_seconds_count{runtime="python"} 3`, `isol8_executions_total{outcome="error",runtime="python"} 2`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestExecuteSSE(t *testing.T) {
	ts := newTestServer(t, nil)
	r := ts.do("POST", "/execute/stream", testMaster, ex("python", "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.1)"))
	if r.status != 200 || r.header.Get("Content-Type") != "text/event-stream" || r.header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("SSE: %d %v", r.status, r.header)
	}
	evs := sseEvents(t, r.body)
	var out string
	for _, ev := range evs[:len(evs)-1] {
		if ev["type"] != "stdout" || ev["phase"] != "code" {
			t.Fatalf("event %v before exit", ev)
		}
		out += ev["data"].(string)
	}
	if last := evs[len(evs)-1]; last["type"] != "exit" || last["data"] != "0" || out != "0\n1\n2\n" {
		t.Fatalf("events %v", evs)
	}
	// A silent program's stream gets keep-alive comments between events.
	ts.srv.opts.SSEKeepAlive = 100 * time.Millisecond
	r = ts.do("POST", "/execute/stream", testMaster, ex("bash", "sleep 1; echo late"))
	body := string(r.body)
	if !strings.HasPrefix(body, ": keep-alive\n\n") || !strings.HasSuffix(body, `"type":"exit","data":"0","phase":"code"}`+"\n\n") {
		t.Fatalf("keep-alive stream: %q", body)
	}
	ts.srv.opts.SSEKeepAlive = 15 * time.Second
	// A request the engine refuses ends the stream with an error event.
	evs = sseEvents(t, ts.do("POST", "/execute/stream", testMaster, ex("cobol", "1")).body)
	if len(evs) != 1 || evs[0]["type"] != "error" || !strings.Contains(evs[0]["data"].(string), "Unknown runtime") {
		t.Fatalf("refused stream: %v", evs)
	}
}

// Sessions keep state between calls over every transport, files round
// trip as binary, and /file refuses paths outside /sandbox and symlinks
// leading out.
func TestSessionsAndFiles(t *testing.T) {
	ts := newTestServer(t, nil)
	sess := func(code string) map[string]any {
		e := ex("bash", code)
		e["sessionId"] = "integ-session-1"
		return e
	}
	if r := ts.do("POST", "/execute", testMaster, sess("echo one > /sandbox/state; echo ok")); r.json(t)["stdout"] != "ok" {
		t.Fatalf("first: %s", r.body)
	}
	list := ts.do("GET", "/sessions", testMaster, nil).json(t)["sessions"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["id"] != "integ-session-1" || list[0].(map[string]any)["isActive"] != false {
		t.Fatalf("sessions: %v", list)
	}
	evs := sseEvents(t, ts.do("POST", "/execute/stream", testMaster, sess("cat /sandbox/state")).body)
	if evs[0]["data"] != "one\n" {
		t.Fatalf("SSE on the session: %v", evs)
	}
	bin := make([]byte, 256*3)
	for i := range bin {
		bin[i] = byte(i)
	}
	put := map[string]any{"sessionId": "integ-session-1", "path": "/sandbox/data.bin", "content": base64.StdEncoding.EncodeToString(bin)}
	if r := ts.do("POST", "/file", testMaster, put); string(r.body) != `{"ok":true}` {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	if r := ts.do("POST", "/execute", testMaster, sess("sha256sum < /sandbox/data.bin | cut -c1-16")); r.status != 200 {
		t.Fatal(string(r.body))
	}
	got := ts.do("GET", "/file?sessionId=integ-session-1&path=/sandbox/data.bin", testMaster, nil).json(t)
	if data, _ := base64.StdEncoding.DecodeString(got["content"].(string)); !bytes.Equal(data, bin) {
		t.Fatal("binary round trip changed the data")
	}
	ts.do("POST", "/execute", testMaster, sess("ln -s /etc/passwd /sandbox/link; ln -s / /sandbox/root"))
	for _, p := range []string{"/etc/passwd", "/sandbox/../etc/passwd", "../etc/passwd", "/sandbox/link", "/sandbox/root/etc/passwd", "/tmp/x"} {
		r := ts.do("GET", "/file?sessionId=integ-session-1&path="+p, testMaster, nil)
		if r.status < 400 || r.status >= 500 || strings.Contains(string(r.body), "cm9vd") {
			t.Errorf("GET /file %s: %d %s", p, r.status, r.body)
		}
		w := map[string]any{"sessionId": "integ-session-1", "path": p, "content": "eA=="}
		if r := ts.do("POST", "/file", testMaster, w); r.status < 400 || r.status >= 500 {
			t.Errorf("POST /file %s: %d %s", p, r.status, r.body)
		}
	}
	if r := ts.do("POST", "/execute", testMaster, sess("cat /etc/passwd | head -c 4; echo; ls -la /etc/passwd | cut -c1-10")); r.status != 200 {
		t.Fatal(string(r.body))
	}
	ts.do("DELETE", "/session/integ-session-1", testMaster, nil)
	if r := ts.do("GET", "/sessions", testMaster, nil); string(r.body) != `{"sessions":[]}` {
		t.Fatalf("after delete: %s", r.body)
	}
	ts.do("GET", "/file?sessionId=integ-session-1&path=/sandbox/data.bin", testMaster, nil).wantError(t, 404, "Session not found")
	// /cleanup without images answers the documented shape.
	c := ts.do("POST", "/cleanup", testMaster, map[string]any{"images": false}).json(t)
	if c["ok"] != true || c["sessions"] == nil || c["containers"] == nil || c["images"] != nil {
		t.Fatalf("cleanup: %v", c)
	}
}

// A session belongs to the tenant that made it: another tenant gets 404
// as if it did not exist, cannot list, use or delete it.
func TestSessionTenantBinding(t *testing.T) {
	ts := newTestServer(t, nil, withKeys(t))
	key := func(tenant string) string {
		return ts.do("POST", "/auth/keys", testMaster, map[string]any{"name": tenant, "tenantId": tenant}).json(t)["key"].(string)
	}
	a, b := key("tenant-a"), key("tenant-b")
	e := ex("bash", "echo secret-a > /sandbox/f; echo made")
	e["sessionId"] = "shared-name"
	if r := ts.do("POST", "/execute", a, e); r.json(t)["stdout"] != "made" {
		t.Fatalf("A: %s", r.body)
	}
	if r := ts.do("GET", "/sessions", b, nil); string(r.body) != `{"sessions":[]}` {
		t.Fatalf("B sees: %s", r.body)
	}
	e["request"] = map[string]any{"runtime": "bash", "code": "cat /sandbox/f"}
	ts.do("POST", "/execute", b, e).wantError(t, 404, "Session not found")
	ts.do("POST", "/execute/stream", b, e).wantError(t, 404, "Session not found")
	ts.do("GET", "/file?sessionId=shared-name&path=/sandbox/f", b, nil).wantError(t, 404, "Session not found")
	ts.do("DELETE", "/session/shared-name", b, nil)
	ts.do("POST", "/cleanup", b, map[string]any{"images": false})
	if r := ts.do("POST", "/execute", a, e); r.json(t)["stdout"] != "secret-a" {
		t.Fatalf("A after B's attempts: %s", r.body)
	}
	if n := len(ts.do("GET", "/sessions", testMaster, nil).json(t)["sessions"].([]any)); n != 1 {
		t.Fatalf("master sees %d sessions", n)
	}
}

// Idle sessions are pruned; a session executing longer than the idle
// limit is not.
func TestSessionPrune(t *testing.T) {
	ts := newTestServer(t, func(c *config.Config) { c.Cleanup.MaxContainerAgeMs = 1000 })
	e := ex("bash", "sleep 2.5; echo survived")
	e["sessionId"] = "long"
	if r := ts.do("POST", "/execute", testMaster, e); r.json(t)["stdout"] != "survived" {
		t.Fatalf("long run: %d %s", r.status, r.body)
	}
	e["request"] = map[string]any{"runtime": "bash", "code": "echo again"}
	if r := ts.do("POST", "/execute", testMaster, e); r.json(t)["stdout"] != "again" {
		t.Fatalf("reuse: %s", r.body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for string(ts.do("GET", "/sessions", testMaster, nil).body) != `{"sessions":[]}` {
		if time.Now().After(deadline) {
			t.Fatal("idle session never pruned")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// With one slot and one queue place, a third request is refused with 429
// and Retry-After, and a queued one gives up with 408.
func TestQueueFullOverHTTP(t *testing.T) {
	ts := newTestServer(t, func(c *config.Config) {
		c.MaxConcurrent, c.Server.MaxQueue, c.Server.QueueTimeoutMs = 1, 1, 1500
	})
	var wg sync.WaitGroup
	wg.Add(2)
	var first, second response
	go func() {
		defer wg.Done()
		first = ts.do("POST", "/execute", testMaster, ex("bash", "sleep 4; echo slow"))
	}()
	waitFor(t, func() bool { _, r := ts.srv.queue.depth(); return r == 1 })
	go func() { defer wg.Done(); second = ts.do("POST", "/execute", testMaster, ex("bash", "echo queued")) }()
	waitFor(t, func() bool { w, _ := ts.srv.queue.depth(); return w == 1 })
	third := ts.do("POST", "/execute", testMaster, ex("bash", "echo third"))
	third.wantError(t, 429, textQueueFull)
	if third.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	wg.Wait()
	second.wantError(t, 408, textQueueTimeout)
	if first.json(t)["stdout"] != "slow" {
		t.Fatalf("first: %s", first.body)
	}
	if r := ts.do("POST", "/execute", testMaster, ex("bash", "echo after")); r.json(t)["stdout"] != "after" {
		t.Fatalf("after: %s", r.body)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition never held")
		}
	}
}

// wsDial opens /execute/ws with key.
func (ts *testServer) wsDial(key string) (*websocket.Conn, *http.Response, error) {
	h := http.Header{}
	if key != "" {
		h.Set("Authorization", "Bearer "+key)
	}
	return websocket.Dial(ts.t.Context(), "ws"+strings.TrimPrefix(ts.url, "http")+"/execute/ws", &websocket.DialOptions{HTTPHeader: h})
}

func wsSend(t *testing.T, c *websocket.Conn, v any) {
	t.Helper()
	data, _ := json.Marshal(v)
	if err := c.Write(t.Context(), websocket.MessageText, data); err != nil {
		t.Fatal(err)
	}
}

// wsCollect reads events until the server closes; it returns them and
// the close status.
func wsCollect(t *testing.T, c *websocket.Conn, until func(map[string]any) bool) ([]map[string]any, websocket.CloseError) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var evs []map[string]any
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if !asClose(err, &ce) {
				t.Fatalf("ws read: %v (events %v)", err, evs)
			}
			return evs, ce
		}
		var ev map[string]any
		if err := json.Unmarshal(data, &ev); err != nil {
			t.Fatalf("server frame is not JSON: %q", data)
		}
		evs = append(evs, ev)
		if until != nil && until(ev) {
			return evs, websocket.CloseError{}
		}
	}
}

func asClose(err error, ce *websocket.CloseError) bool {
	if s := websocket.CloseStatus(err); s != -1 {
		*ce = websocket.CloseError{Code: s}
		var full websocket.CloseError
		if ok := errorsAs(err, &full); ok {
			*ce = full
		}
		return true
	}
	return false
}

func TestWebSocket(t *testing.T) {
	ts := newTestServer(t, nil)
	if _, resp, err := ts.wsDial("wrong"); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("wrong key upgrade: %v", err)
	}
	if _, resp, err := ts.wsDial(""); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("no key upgrade: %v", err)
	}

	t.Run("hello and order", func(t *testing.T) {
		c, _, err := ts.wsDial(testMaster)
		if err != nil {
			t.Fatal(err)
		}
		wsSend(t, c, map[string]any{"type": "stdin", "data": "ignored"})
		wsSend(t, c, map[string]any{"type": "signal", "signal": "SIGINT"})
		wsSend(t, c, map[string]any{"type": "execute", "request": map[string]any{"runtime": "python",
			"code": "import time\nfor i in range(3):\n    print('chunk', i, flush=True)\n    time.sleep(0.1)"}})
		evs, ce := wsCollect(t, c, nil)
		var out string
		for _, ev := range evs[:len(evs)-1] {
			out += ev["data"].(string)
		}
		if out != "chunk 0\nchunk 1\nchunk 2\n" || evs[len(evs)-1]["type"] != "exit" || evs[len(evs)-1]["data"] != "0" {
			t.Fatalf("events %v", evs)
		}
		if ce.Code != websocket.StatusNormalClosure || ce.Reason != "Execution complete" {
			t.Fatalf("close %v", ce)
		}
	})
	t.Run("invalid JSON closes 1003", func(t *testing.T) {
		for _, frame := range []struct {
			typ  websocket.MessageType
			data string
		}{{websocket.MessageText, "{nope"}, {websocket.MessageBinary, "\x00\xff\x10"}} {
			c, _, err := ts.wsDial(testMaster)
			if err != nil {
				t.Fatal(err)
			}
			c.Write(t.Context(), frame.typ, []byte(frame.data))
			evs, ce := wsCollect(t, c, nil)
			if len(evs) != 1 || evs[0]["type"] != "error" || evs[0]["data"] != "Invalid JSON message" ||
				ce.Code != websocket.StatusUnsupportedData || ce.Reason != "Invalid JSON" {
				t.Fatalf("garbage %q: %v %v", frame.data, evs, ce)
			}
		}
	})
	t.Run("unknown type stays open", func(t *testing.T) {
		c, _, err := ts.wsDial(testMaster)
		if err != nil {
			t.Fatal(err)
		}
		wsSend(t, c, map[string]any{"type": "unknown-type"})
		evs, _ := wsCollect(t, c, func(map[string]any) bool { return true })
		if evs[0]["type"] != "error" || evs[0]["data"] != "Unknown message type: unknown-type" {
			t.Fatalf("unknown: %v", evs)
		}
		wsSend(t, c, map[string]any{"type": "execute", "request": map[string]any{"runtime": "bash", "code": "exit 4"}})
		evs, ce := wsCollect(t, c, nil)
		if evs[len(evs)-1]["data"] != "4" || ce.Code != websocket.StatusNormalClosure {
			t.Fatalf("after unknown: %v %v", evs, ce)
		}
	})
	t.Run("stdin reaches input and read", func(t *testing.T) {
		for _, tc := range []struct{ rt, code string }{
			{"python", "name = input()\nprint('hello ' + name, flush=True)\nsecond = input()\nprint('then ' + second)"},
			{"bash", "read name; echo \"hello $name\"; read second; echo \"then $second\""},
		} {
			c, _, err := ts.wsDial(testMaster)
			if err != nil {
				t.Fatal(err)
			}
			wsSend(t, c, map[string]any{"type": "execute", "interactive": true, "request": map[string]any{"runtime": tc.rt, "code": tc.code}})
			wsSend(t, c, map[string]any{"type": "stdin", "data": "world\n"})
			// The second line is sent only after the program answered the
			// first: it really is interactive.
			evs, _ := wsCollect(t, c, func(ev map[string]any) bool { return strings.Contains(ev["data"].(string), "hello world") })
			if len(evs) == 0 {
				t.Fatalf("%s: no answer", tc.rt)
			}
			wsSend(t, c, map[string]any{"type": "stdin", "data": "more\n"})
			rest, ce := wsCollect(t, c, nil)
			var out string
			for _, ev := range append(evs, rest...) {
				if ev["type"] == "stdout" {
					out += ev["data"].(string)
				}
			}
			if out != "hello world\nthen more\n" || rest[len(rest)-1]["data"] != "0" || ce.Code != websocket.StatusNormalClosure {
				t.Fatalf("%s: %v", tc.rt, rest)
			}
		}
	})
	t.Run("SIGINT ends a sleep", func(t *testing.T) {
		c, _, err := ts.wsDial(testMaster)
		if err != nil {
			t.Fatal(err)
		}
		wsSend(t, c, map[string]any{"type": "execute", "request": map[string]any{"runtime": "bash", "code": "echo started; sleep 60; echo not-reached"}})
		wsCollect(t, c, func(ev map[string]any) bool { return ev["data"] == "started\n" })
		start := time.Now()
		wsSend(t, c, map[string]any{"type": "signal", "signal": "SIGINT"})
		evs, ce := wsCollect(t, c, nil)
		last := evs[len(evs)-1]
		if time.Since(start) > 10*time.Second || last["type"] != "exit" || last["data"] != "130" || ce.Code != websocket.StatusNormalClosure {
			t.Fatalf("after SIGINT (%s): %v %v", time.Since(start), evs, ce)
		}
		c2, _, _ := ts.wsDial(testMaster)
		wsSend(t, c2, map[string]any{"type": "execute", "request": map[string]any{"runtime": "bash", "code": "sleep 60"}})
		time.Sleep(500 * time.Millisecond)
		wsSend(t, c2, map[string]any{"type": "signal", "signal": "SIGHUP"})
		evs, _ = wsCollect(t, c2, func(map[string]any) bool { return true })
		if evs[0]["type"] != "error" || !strings.Contains(evs[0]["data"].(string), "Unsupported signal") {
			t.Fatalf("SIGHUP: %v", evs)
		}
		wsSend(t, c2, map[string]any{"type": "signal", "signal": "SIGKILL"})
		evs, _ = wsCollect(t, c2, nil)
		if evs[len(evs)-1]["data"] != "137" {
			t.Fatalf("SIGKILL: %v", evs)
		}
	})
	t.Run("sessions over WS", func(t *testing.T) {
		for i, code := range []string{"echo ws-state > /sandbox/s", "cat /sandbox/s"} {
			c, _, err := ts.wsDial(testMaster)
			if err != nil {
				t.Fatal(err)
			}
			wsSend(t, c, map[string]any{"type": "execute", "sessionId": "ws-sess", "request": map[string]any{"runtime": "bash", "code": code}})
			evs, _ := wsCollect(t, c, nil)
			if i == 1 && evs[0]["data"] != "ws-state\n" {
				t.Fatalf("session state over WS: %v", evs)
			}
		}
	})
}

// Prewarm fills the default pool: the first request is a pool hit.
func TestPrewarm(t *testing.T) {
	ts := newTestServer(t, nil)
	if err := ts.srv.Prewarm(t.Context(), "bash"); err != nil {
		t.Fatal(err)
	}
	if st := ts.host.PoolStats(); st.Idle < 1 || st.Hits != 0 {
		t.Fatalf("after prewarm: %+v", st)
	}
	if r := ts.do("POST", "/execute", testMaster, ex("bash", "echo warm")); r.json(t)["stdout"] != "warm" {
		t.Fatal(string(r.body))
	}
	if st := ts.host.PoolStats(); st.Hits != 1 || st.Misses != 0 {
		t.Fatalf("first request: %+v", st)
	}
	if err := ts.srv.Prewarm(t.Context(), "cobol"); err == nil {
		t.Fatal("prewarm of an unknown runtime")
	}
}

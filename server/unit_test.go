package server

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/config"
	"github.com/isol8/isol8/engine"
	"github.com/isol8/isol8/internal/testdb"
)

// newUnitServer serves a Server whose host is never started: for routes
// that never reach a sandbox (auth, key administration, errors).
func newUnitServer(t *testing.T, cfg func(*config.Config), opts ...serverOpt) *testServer {
	t.Helper()
	c := config.Defaults()
	if cfg != nil {
		cfg(c)
	}
	h, err := engine.NewHost(engine.HostOptions{MaxConcurrent: c.MaxConcurrent})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Stop(context.Background()) }) // after the server's Close
	return serveOn(t, Options{Host: h, MasterKey: testMaster, Config: c}, opts...)
}

func TestHealthIsPublic(t *testing.T) {
	ts := newUnitServer(t, nil)
	r := ts.do("GET", "/health", "", nil)
	if r.status != 200 || string(r.body) != `{"status":"ok","version":"`+api.Version+`"}` {
		t.Fatalf("health: %d %s", r.status, r.body)
	}
}

// Every route but /health needs a key: none is 401, a wrong one 403, for
// unknown routes too (auth comes before routing).
func TestAuthenticationStatuses(t *testing.T) {
	ts := newUnitServer(t, nil)
	for _, path := range []string{"/sessions", "/nope", "/metrics", "/openapi.json", "/execute/ws"} {
		ts.do("GET", path, "", nil).wantError(t, 401, "Missing Authorization header")
		ts.do("GET", path, "wrong", nil).wantError(t, 403, "Invalid API key")
	}
	ts.do("POST", "/execute", "wrong", ex("python", "1")).wantError(t, 403, "Invalid API key")
	ts.do("GET", "/nope", testMaster, nil).wantError(t, 404, "Not found")
	ts.do("PUT", "/sessions", testMaster, nil).wantError(t, 405, "Method not allowed")
	// The Bearer prefix is case-insensitive and optional.
	for _, h := range []string{"bearer " + testMaster, "BEARER   " + testMaster, testMaster} {
		req := httptest.NewRequest("GET", "/sessions", nil)
		req.Header.Set("Authorization", h)
		w := httptest.NewRecorder()
		ts.srv.Handler().ServeHTTP(w, req)
		if w.Code != 200 {
			t.Errorf("Authorization %q: %d", h, w.Code)
		}
	}
	if r := ts.do("GET", "/sessions", testMaster, nil); string(r.body) != `{"sessions":[]}` {
		t.Fatalf("sessions: %s", r.body)
	}
}

// Every answer carries a request id: the client's when it is a plain
// token, a fresh one otherwise.
func TestRequestID(t *testing.T) {
	ts := newUnitServer(t, nil)
	for in, keep := range map[string]bool{"abc-123": true, "bad id\x01": false, "": false} {
		req := httptest.NewRequest("GET", "/health", nil)
		if in != "" {
			req.Header.Set("X-Request-ID", in)
		}
		w := httptest.NewRecorder()
		ts.srv.Handler().ServeHTTP(w, req)
		got := w.Header().Get("X-Request-ID")
		if (got == in) != keep || got == "" {
			t.Errorf("X-Request-ID %q answered %q", in, got)
		}
	}
}

func TestOpenAPIAndMetricsServed(t *testing.T) {
	ts := newUnitServer(t, nil)
	r := ts.do("GET", "/openapi.json", testMaster, nil)
	if r.status != 200 || string(r.body) != string(OpenAPI) {
		t.Fatalf("openapi.json: %d", r.status)
	}
	apiRouter(t) // the document is valid OpenAPI 3
	ts.do("GET", "/sessions", "", nil)
	m := ts.do("GET", "/metrics", testMaster, nil)
	for _, want := range []string{"isol8_queue_waiting 0", "isol8_sessions 0", `isol8_rejections_total{reason="unauthenticated"} 1`, "isol8_pool_hits_total 0"} {
		if !strings.Contains(string(m.body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// Hostile bodies get 4xx JSON errors and the server keeps serving.
func TestHostileBodies(t *testing.T) {
	ts := newUnitServer(t, func(c *config.Config) { c.Server.MaxBodyBytes = 64 << 10 })
	cases := []struct {
		body   any
		status int
		msg    string
	}{
		{"{not json", 400, "Invalid JSON body"},
		{"", 400, "Invalid JSON body"},
		{"[1,2]", 400, "Invalid JSON body"},
		{`{"request":{"runtime":"python","code":"1"}} trailing`, 400, "Invalid JSON body"},
		{"{}", 400, "request is required"},
		{`{"request":null}`, 400, "request is required"},
		{`{"request":{"runtime":5}}`, 400, "Invalid JSON body: request.runtime must be a string"},
		{`{"request":{"runtime":"python","timeoutMs":"soon"}}`, 400, "Invalid JSON body: request.timeoutMs must be a number"},
		{`{"request":{"runtime":"python","env":[1]}}`, 400, "Invalid JSON body: request.env must be an object"},
		{`{"request":{"runtime":"python"},"options":{"network":7}}`, 400, "Invalid JSON body: options.network must be a string"},
		{`{"request":{"runtime":"python"},"options":{"poolSize":"big"}}`, 400, "Invalid JSON body: options.poolSize must be an object"},
		{`{"request":{"runtime":"python","code":"` + strings.Repeat("x", 70<<10) + `"}}`, 413, "Request body too large (limit 65536 bytes)"},
		{strings.Repeat("[", 100000), 413, "Request body too large (limit 65536 bytes)"},
	}
	for _, route := range []string{"/execute", "/execute/stream"} {
		for _, tc := range cases {
			ts.do("POST", route, testMaster, tc.body).wantError(t, tc.status, tc.msg)
		}
	}
	ts.do("POST", "/file", testMaster, "{").wantError(t, 400, "Invalid JSON body")
	huge := map[string]any{"sessionId": "x", "path": "/sandbox/big", "content": strings.Repeat("QUFB", 20<<10)}
	ts.do("POST", "/file", testMaster, huge).wantError(t, 413, "Request body too large (limit 65536 bytes)")
	long := ex("python", "1")
	long["sessionId"] = strings.Repeat("s", 257)
	ts.do("POST", "/execute", testMaster, long).wantError(t, 400, "sessionId must be at most 256 bytes")
	ts.do("POST", "/file", testMaster, map[string]any{"sessionId": "x"}).wantError(t, 400, "Missing sessionId or path")
	ts.do("POST", "/file", testMaster, map[string]any{"sessionId": "x", "path": "/sandbox/a", "content": "%%%"}).wantError(t, 400, "Invalid base64 content")
	ts.do("POST", "/file", testMaster, map[string]any{"sessionId": "x", "path": "/sandbox/a", "content": ""}).wantError(t, 404, "Session not found")
	ts.do("GET", "/file", testMaster, nil).wantError(t, 400, "Missing sessionId or path")
	ts.do("GET", "/file?sessionId=x&path=/sandbox/a", testMaster, nil).wantError(t, 404, "Session not found")
	if r := ts.do("DELETE", "/session/unknown", testMaster, nil); r.status != 200 || string(r.body) != `{"ok":true}` {
		t.Fatalf("delete unknown: %d %s", r.status, r.body)
	}
	if r := ts.do("GET", "/health", "", nil); r.status != 200 {
		t.Fatal("server stopped serving")
	}
}

func TestKeyRoutesNeedDBAuth(t *testing.T) {
	ts := newUnitServer(t, nil)
	for _, rt := range [][2]string{{"POST", "/auth/keys"}, {"GET", "/auth/keys"}, {"DELETE", "/auth/keys/x"}, {"POST", "/auth/login"}} {
		ts.do(rt[0], rt[1], testMaster, map[string]any{"name": "n"}).wantError(t, 400, "DB-backed auth is not enabled")
	}
}

// The key routes and the auth matrix (201/400/403/404, expiry, login
// tokens, tenants) against every key store backend: SQLite here, a real
// PostgreSQL and MariaDB below.
func TestKeyRoutes(t *testing.T) { testKeyRoutes(t, withKeys(t)) }

func TestKeyRoutesPostgreSQL(t *testing.T) {
	testKeyRoutes(t, withKeyStore(t, testdb.PostgreSQL(t).NewDatabase(t)))
}

func TestKeyRoutesMariaDB(t *testing.T) {
	testKeyRoutes(t, withKeyStore(t, testdb.MariaDB(t).NewDatabase(t)))
}

func testKeyRoutes(t *testing.T, store serverOpt) {
	ts := newUnitServer(t, nil, store)
	r := ts.do("POST", "/auth/keys", testMaster, map[string]any{"name": "test-key", "tenantId": "org-1"})
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	k := r.json(t)
	key, _ := k["key"].(string)
	if !strings.HasPrefix(key, "isol8_") || len(key) != 70 || k["keyPrefix"] != key[:10]+"..." ||
		k["name"] != "test-key" || k["tenantId"] != "org-1" {
		t.Fatalf("created key: %v", k)
	}
	if exp, err := time.Parse(time.RFC3339, k["expiresAt"].(string)); err != nil || !exp.After(time.Now()) {
		t.Fatalf("expiresAt %v", k["expiresAt"])
	}
	ts.do("POST", "/auth/keys", testMaster, map[string]any{}).wantError(t, 400, "name is required")
	ts.do("POST", "/auth/keys", testMaster, "{").wantError(t, 400, "Invalid JSON body")
	ts.do("POST", "/auth/keys", testMaster, map[string]any{"name": "alpha-key", "tenantId": "alpha"})

	// A DB key authenticates (and is recorded as used) but is no admin.
	if r := ts.do("GET", "/sessions", key, nil); r.status != 200 {
		t.Fatalf("DB key: %d %s", r.status, r.body)
	}
	for _, rt := range [][2]string{{"POST", "/auth/keys"}, {"GET", "/auth/keys"}, {"POST", "/auth/login"}, {"DELETE", "/auth/keys/x"}} {
		ts.do(rt[0], rt[1], key, map[string]any{"name": "x"}).wantError(t, 403, "Master key required for this operation")
		ts.do(rt[0], rt[1], "", nil).wantError(t, 401, "Missing Authorization header")
	}

	list := ts.do("GET", "/auth/keys", testMaster, nil)
	if strings.Contains(string(list.body), key) || strings.Contains(string(list.body), "keyHash") {
		t.Fatal("GET /auth/keys leaks the key")
	}
	// Keys made in the same millisecond have no defined order: find the
	// used one by id.
	keys := list.json(t)["keys"].([]any)
	used := false
	for _, e := range keys {
		if m := e.(map[string]any); m["id"] == k["id"] {
			used = m["lastUsedAt"] != nil
		}
	}
	if len(keys) != 2 || !used {
		t.Fatalf("keys: %s", list.body)
	}
	alpha := ts.do("GET", "/auth/keys?tenantId=alpha", testMaster, nil).json(t)["keys"].([]any)
	if len(alpha) != 1 || alpha[0].(map[string]any)["tenantId"] != "alpha" {
		t.Fatalf("alpha keys: %v", alpha)
	}

	id := k["id"].(string)
	if r := ts.do("DELETE", "/auth/keys/"+id, testMaster, nil); string(r.body) != `{"id":"`+id+`","ok":true}` && string(r.body) != `{"ok":true,"id":"`+id+`"}` {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	ts.do("GET", "/sessions", key, nil).wantError(t, 403, "Invalid API key")
	ts.do("DELETE", "/auth/keys/nope", testMaster, nil).wantError(t, 404, "Key not found")

	// Expired keys are refused; login tokens are regular keys.
	ts.do("POST", "/auth/keys", testMaster, map[string]any{"name": "old", "ttlMs": -1000}).wantError(t, 400, "ttlMs must be positive")
	exp := ts.do("POST", "/auth/keys", testMaster, map[string]any{"name": "old", "ttlMs": 1}).json(t)["key"].(string)
	time.Sleep(20 * time.Millisecond)
	ts.do("GET", "/sessions", exp, nil).wantError(t, 403, "Invalid API key")
	login := ts.do("POST", "/auth/login", testMaster, nil)
	tok := login.json(t)
	if login.status != 200 || !strings.HasPrefix(tok["token"].(string), "isol8_") || tok["keyId"] == "" {
		t.Fatalf("login: %d %s", login.status, login.body)
	}
	if r := ts.do("GET", "/sessions", tok["token"].(string), nil); r.status != 200 {
		t.Fatalf("login token: %d", r.status)
	}
}

// The queue admits maxConcurrent at once, queues maxQueue more in order,
// refuses past that (Exhausted: 429) and gives up after its timeout
// (Deadline: 408).
func TestQueue(t *testing.T) {
	q := newQueue(1, 1, 300*time.Millisecond)
	rel, err := q.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	var waitErr error
	go func() {
		defer wg.Done()
		_, waitErr = q.acquire(context.Background())
	}()
	for deadline := time.Now().Add(2 * time.Second); ; {
		if w, _ := q.depth(); w == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("second acquire did not queue")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := q.acquire(context.Background()); !api.IsExhausted(err) || statusOf(err) != 429 || err.Error() != textQueueFull {
		t.Fatalf("full queue: %v", err)
	}
	wg.Wait()
	if !api.IsDeadline(waitErr) || statusOf(waitErr) != 408 || waitErr.Error() != textQueueTimeout {
		t.Fatalf("queue timeout: %v", waitErr)
	}
	rel()
	rel2, err := q.acquire(context.Background())
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	rel2()
}

// Client options are merged over the defaults; the pool policy and mode
// are the server's; with overrides off a client can only tighten.
func TestEngineOptionsPolicy(t *testing.T) {
	c := config.Defaults()
	c.PoolStrategy = "secure"
	c.PoolSize = config.PoolSize{Clean: 3, Dirty: 2}
	ro := false
	client := &api.Options{Network: "host", TimeoutMs: 99999, MemoryLimit: "4g", PoolStrategy: "fast",
		PoolSize: &api.PoolSize{Clean: 9}, Mode: "persistent", Debug: true, ReadonlyRootFs: &ro,
		Security: &api.Security{Seccomp: "unconfined"}, Image: "evil:latest", CPULimit: 0.5}
	o := engineOptions(c, client, false)
	if o.Network != "host" || o.TimeoutMs != 99999 || o.MemoryLimit != "4g" || o.PoolStrategy != "secure" ||
		o.PoolSize.Clean != 3 || o.Mode != "ephemeral" || o.Debug || o.SandboxSize != "512m" {
		t.Fatalf("overrides on: %+v", o)
	}
	c.Server.AllowClientOverrides = false
	o = engineOptions(c, client, true)
	if o.Network != "none" || o.TimeoutMs != 30000 || o.MemoryLimit != "512m" || o.Image != "" ||
		o.Security != nil || o.ReadonlyRootFs != nil || o.CPULimit != 0.5 || o.Mode != "persistent" {
		t.Fatalf("overrides off: %+v", o)
	}
	// Reference clients may send poolSize as a number (it is ignored).
	var env envelope
	if err := decodeJSON([]byte(`{"request":{"runtime":"python"},"options":{"poolSize":5,"remoteCode":{"enabled":true}}}`), &env); err != nil || env.Options.PoolSize.Clean != 5 {
		t.Fatalf("numeric poolSize: %v", err)
	}
	o = engineOptions(c, &api.Options{TimeoutMs: 1000, MemoryLimit: "128m"}, false)
	if o.TimeoutMs != 1000 || o.MemoryLimit != "128m" {
		t.Fatalf("tightening refused: %+v", o)
	}
}

// A WebSocket that never asks for an execution is closed after the idle
// timeout.
func TestWebSocketIdleTimeout(t *testing.T) {
	ts := newUnitServer(t, nil, func(o *Options) { o.WSIdleTimeout = 300 * time.Millisecond })
	c, _, err := ts.wsDial(testMaster)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, _, err := c.Read(ctx); err == nil || ctx.Err() != nil || time.Since(start) > 5*time.Second {
		t.Fatalf("idle connection: %v after %s", err, time.Since(start))
	}
}

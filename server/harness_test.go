package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/isol8/isol8"
	"github.com/isol8/isol8/auth"
	"github.com/isol8/isol8/config"
	"github.com/isol8/isol8/engine"
	"github.com/isol8/isol8/internal/testenv"
)

const testMaster = "test-master-key"

var (
	specOnce   sync.Once
	specRouter routers.Router
	specErr    error
)

// apiRouter loads the checked-in OpenAPI document once.
func apiRouter(t testing.TB) routers.Router {
	t.Helper()
	specOnce.Do(func() {
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromData(OpenAPI)
		if err != nil {
			specErr = err
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			specErr = err
			return
		}
		doc.Servers = nil
		specRouter, specErr = gorillamux.NewRouter(doc)
	})
	if specErr != nil {
		t.Fatalf("openapi.json: %v", specErr)
	}
	return specRouter
}

// testServer is a Server on loopback over a real host.
type testServer struct {
	t    *testing.T
	url  string
	srv  *Server
	host *engine.Host
}

type serverOpt func(*Options)

// withKeys gives the server a real key store: SQLite in a temp file.
func withKeys(t *testing.T) serverOpt {
	return withKeyStore(t, filepath.Join(t.TempDir(), "auth.db"))
}

// withKeyStore gives the server the key store at conn (a SQLite path or a
// database URL).
func withKeyStore(t *testing.T, conn string) serverOpt {
	return func(o *Options) {
		ks, err := auth.Open(t.Context(), conn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ks.Close() })
		o.Keys = ks
	}
}

// newHostT returns a started host on the test containerd.
func newHostT(t *testing.T, maxConcurrent int) *engine.Host {
	t.Helper()
	addr := testenv.MustHaveContainerd(t)
	h, err := engine.NewHost(engine.HostOptions{
		NewDriver: isol8.ContainerdDriver(engine.ContainerdOptions{Address: addr}),
		InitPath:  testenv.InitBinary(t), MaxConcurrent: maxConcurrent,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Stop(context.Background()); err != nil {
			t.Errorf("host Stop: %v", err)
		}
	})
	return h
}

// newTestServer serves a Server over a real host; cfg (may be nil) edits
// the configuration first.
func newTestServer(t *testing.T, cfg func(*config.Config), opts ...serverOpt) *testServer {
	t.Helper()
	c := config.Defaults()
	if cfg != nil {
		cfg(c)
	}
	h := newHostT(t, c.MaxConcurrent)
	return serveOn(t, Options{Host: h, MasterKey: testMaster, Config: c, PruneInterval: 100 * time.Millisecond}, opts...)
}

// serveOn serves a Server with options o (edited by opts) on loopback,
// closed when the test ends; the caller owns o.Host.
func serveOn(t *testing.T, o Options, opts ...serverOpt) *testServer {
	t.Helper()
	for _, f := range opts {
		f(&o)
	}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		if err := srv.Close(context.Background()); err != nil {
			t.Errorf("server Close: %v", err)
		}
	})
	return &testServer{t: t, url: hs.URL, srv: srv, host: o.Host}
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response %d is not a JSON object: %v: %q", r.status, err, r.body)
	}
	return m
}

// wantError checks a JSON error answer.
func (r response) wantError(t testing.TB, status int, msg string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d (body %s)", r.status, status, r.body)
	}
	if got := r.json(t)["error"]; got != msg {
		t.Fatalf("error %q, want %q", got, msg)
	}
}

// do sends a request (body: nil, a string sent raw, or a value sent as
// JSON) with key as bearer token ("" for none) and validates the response
// against the OpenAPI document.
func (ts *testServer) do(method, path, key string, body any) response {
	ts.t.Helper()
	return doReq(ts.t, ts.url, method, path, key, body)
}

func doReq(t testing.TB, base, method, path, key string, body any) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := response{status: resp.StatusCode, header: resp.Header, body: data}
	validate(t, req, r)
	return r
}

// validate checks a response against the OpenAPI document: every JSON
// answer, errors included (unknown routes answer the Error schema).
func validate(t testing.TB, req *http.Request, r response) {
	t.Helper()
	ct := r.header.Get("Content-Type")
	if !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(ct, "text/plain") {
		return // event streams are checked event by event
	}
	router := apiRouter(t)
	route, params, err := router.FindRoute(req)
	if err != nil {
		// Unknown routes and methods: the body must still be an Error.
		var m map[string]any
		if json.Unmarshal(r.body, &m) != nil || m["error"] == nil {
			t.Errorf("%s %s: %d answer is not a JSON error: %q", req.Method, req.URL.Path, r.status, r.body)
		}
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 r.status,
		Header:                 r.header,
		Body:                   io.NopCloser(bytes.NewReader(r.body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: false, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s %s: response %d does not match openapi.json: %v\nbody: %s", req.Method, req.URL.Path, r.status, err, r.body)
	}
}

// events parses an SSE body into its events, checking the framing.
func sseEvents(t testing.TB, body []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, frame := range strings.Split(strings.TrimSuffix(string(body), "\n\n"), "\n\n") {
		if frame == "" {
			continue
		}
		data, ok := strings.CutPrefix(frame, "data: ")
		if !ok || strings.Contains(data, "\n") {
			t.Fatalf("bad SSE frame %q", frame)
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("SSE frame is not JSON: %q", data)
		}
		out = append(out, ev)
	}
	return out
}

func ex(runtime, code string) map[string]any {
	return map[string]any{"request": map[string]any{"runtime": runtime, "code": code}}
}

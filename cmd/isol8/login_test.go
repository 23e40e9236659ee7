package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/isol8/isol8/auth"
)

// loginServer is a stand-in for the one route of the REST server that
// `isol8 login` calls, POST /auth/login, answering with status and body.
type loginServer struct {
	*httptest.Server
	status int
	body   string

	mu   sync.Mutex
	reqs []loginRequest
}

type loginRequest struct {
	method, path, auth, contentType string
	body                            map[string]any
}

func newLoginServer(t *testing.T, status int, body string) *loginServer {
	t.Helper()
	s := &loginServer{status: status, body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		req := loginRequest{method: r.Method, path: r.URL.Path, auth: r.Header.Get("Authorization"), contentType: r.Header.Get("Content-Type")}
		if err := json.Unmarshal(data, &req.body); err != nil {
			t.Errorf("login request body %q: %v", data, err)
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, req)
		s.mu.Unlock()
		if r.Method != http.MethodPost || r.URL.Path != "/auth/login" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(s.status)
		io.WriteString(w, s.body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *loginServer) requests() []loginRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]loginRequest(nil), s.reqs...)
}

const loginOK = `{"token":"isol8_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","expiresAt":"2026-03-02T12:00:00.000Z","keyId":"5a1c6f2e-7d2b-4c55-9d4e-1f2a3b4c5d6e"}`

func TestLogin(t *testing.T) {
	h := newHarness(t)
	srv := newLoginServer(t, http.StatusOK, loginOK)
	r := h.run("login", "--host", srv.URL+"/", "--key", "master-secret")
	wantCode(t, r, 0)
	if r.stderr != "✔ Authenticated successfully\n" {
		t.Errorf("stderr = %q", r.stderr)
	}
	expires := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC).Local().Format("2006-01-02 15:04:05 MST")
	wantOut := "  Host:    " + srv.URL + "\n  Expires: " + expires + "\n  Stored:  ~/.isol8/credentials.json\n"
	if r.stdout != wantOut {
		t.Errorf("stdout = %q, want %q", r.stdout, wantOut)
	}
	reqs := srv.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	q := reqs[0]
	if q.method != "POST" || q.path != "/auth/login" || q.auth != "Bearer master-secret" || q.contentType != "application/json" {
		t.Errorf("request = %+v", q)
	}
	if want := map[string]any{"name": "cli-login-2026-03-01T12:00:00.000Z"}; !jsonEqual(q.body, want) {
		t.Errorf("request body = %v, want %v (no ttlMs without --ttl)", q.body, want)
	}

	path := filepath.Join(h.home, ".isol8", "credentials.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "{\n" +
		`  "host": "` + srv.URL + `",` + "\n" +
		`  "token": "isol8_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",` + "\n" +
		`  "expiresAt": "2026-03-02T12:00:00.000Z",` + "\n" +
		`  "keyId": "5a1c6f2e-7d2b-4c55-9d4e-1f2a3b4c5d6e"` + "\n}"
	if string(data) != want {
		t.Errorf("credentials file:\n%s\nwant:\n%s", data, want)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("credentials file mode: %v, %v; want 0600", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("~/.isol8 mode: %v, %v; want 0700", fi.Mode(), err)
	}
	if strings.Contains(r.output(), "master-secret") {
		t.Error("the master key was printed")
	}
	// What login stored is what a later --host run uses.
	a := newApp(strings.NewReader(""), io.Discard, io.Discard, map[string]string{"HOME": h.home}, h.cwd)
	a.now = func() time.Time { return h.now }
	if key, err := a.resolveAPIKey(srv.URL+"/", ""); err != nil || !strings.HasPrefix(key, "isol8_0123") {
		t.Errorf("resolveAPIKey after login = %q, %v", key, err)
	}
}

func TestLoginOptions(t *testing.T) {
	h := newHarness(t)
	h.env["ISOL8_API_KEY"] = "env-master"
	srv := newLoginServer(t, http.StatusOK, loginOK)
	r := h.run("login", "--host", srv.URL, "--name", "laptop", "--ttl", "60000")
	wantCode(t, r, 0)
	q := srv.requests()[0]
	if q.auth != "Bearer env-master" {
		t.Errorf("Authorization = %q, want the key from ISOL8_API_KEY", q.auth)
	}
	if want := map[string]any{"name": "laptop", "ttlMs": 60000.0}; !jsonEqual(q.body, want) {
		t.Errorf("request body = %v, want %v", q.body, want)
	}
}

// A second login replaces the file, also when it is a symlink planted to
// redirect the write: the link is replaced, its target left alone.
func TestLoginReplacesCredentials(t *testing.T) {
	h := newHarness(t)
	srv := newLoginServer(t, http.StatusOK, loginOK)
	target := write(t, h.cwd, "elsewhere.txt", "do not touch")
	dir := filepath.Join(h.home, ".isol8")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "credentials.json")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	wantCode(t, h.run("login", "--host", srv.URL, "--key", "m"), 0)
	if data, _ := os.ReadFile(target); string(data) != "do not touch" {
		t.Errorf("symlink target was written: %q", data)
	}
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Errorf("credentials file: %v, %v; want a regular file with mode 0600", fi, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("~/.isol8 holds %d entries, want only credentials.json (no temporary files left)", len(entries))
	}
}

func TestLoginFailures(t *testing.T) {
	const warn = "[WARN] DB-backed auth may not be enabled on the server.\n[WARN] Start the server with --auth-db <path> to enable it.\n"
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"forbidden", http.StatusForbidden, `{"error":"Invalid API key"}`, "✖ Authentication failed: Invalid API key\n"},
		{"not master", http.StatusForbidden, `{"error":"Master key required for this operation"}`,
			"✖ Authentication failed: Master key required for this operation\n"},
		{"db auth off", http.StatusBadRequest, `{"error":"DB-backed auth is not enabled"}`,
			"✖ Authentication failed: DB-backed auth is not enabled\n" + warn},
		{"no error text", http.StatusInternalServerError, `oops`, "✖ Authentication failed: Internal Server Error\n"},
		{"bad json", http.StatusOK, `{"token":`, "✖ Login failed: invalid response from server: unexpected end of JSON input\n"},
		{"no token", http.StatusOK, `{"expiresAt":"2026-03-02T12:00:00.000Z"}`, "✖ Login failed: invalid response from server: no token\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			srv := newLoginServer(t, tc.status, tc.body)
			r := h.run("login", "--host", srv.URL, "--key", "master-secret")
			wantCode(t, r, 1)
			if r.stderr != tc.want || r.stdout != "" {
				t.Errorf("stdout = %q, stderr = %q; want stderr %q", r.stdout, r.stderr, tc.want)
			}
			if _, err := os.Stat(filepath.Join(h.home, ".isol8", "credentials.json")); !os.IsNotExist(err) {
				t.Errorf("credentials written after a failed login: %v", err)
			}
		})
	}
}

func TestLoginBadInput(t *testing.T) {
	srv := newLoginServer(t, http.StatusOK, loginOK)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string // stderr prefix
	}{
		{"no host", []string{"--key", "k"}, nil, "error: required option '--host <url>' not specified\n"},
		{"no key", []string{"--host", srv.URL}, nil, "error: required option '--key <master>' not specified\n"},
		{"empty key", []string{"--host", srv.URL, "--key", ""}, map[string]string{"ISOL8_API_KEY": "env"}, "error: required option '--key <master>' not specified\n"},
		{"ttl not a number", []string{"--host", srv.URL, "--key", "k", "--ttl", "soon"}, nil,
			"[ERR] Invalid --ttl: soon. Expected a positive number of milliseconds.\n"},
		{"ttl zero", []string{"--host", srv.URL, "--key", "k", "--ttl", "0"}, nil, "[ERR] Invalid --ttl: 0."},
		{"ttl negative", []string{"--host", srv.URL, "--key", "k", "--ttl", "-5"}, nil, "[ERR] Invalid --ttl: -5."},
		{"ttl overflow", []string{"--host", srv.URL, "--key", "k", "--ttl", "99999999999999999999"}, nil, "[ERR] Invalid --ttl:"},
		{"ftp host", []string{"--host", "ftp://h", "--key", "k"}, nil, "✖ Login failed: invalid --host \"ftp://h\": expected an http:// or https:// URL\n"},
		{"no scheme", []string{"--host", "localhost:3000", "--key", "k"}, nil, "✖ Login failed: invalid --host"},
		{"empty host", []string{"--host", "", "--key", "k"}, nil, "✖ Login failed: invalid --host"},
		{"refused", []string{"--host", closed.URL, "--key", "k"}, nil, "✖ Login failed: dial tcp"},
		{"newline in key", []string{"--host", srv.URL, "--key", "a\nb"}, nil, "✖ Login failed: net/http: invalid header field value"},
		{"no home", []string{"--host", srv.URL, "--key", "k"}, map[string]string{"HOME": ""}, "[ERR] Cannot locate the home directory"},
		{"argument", []string{"extra", "--host", srv.URL, "--key", "k"}, nil, "error: too many arguments for 'login'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			for k, v := range tc.env {
				h.env[k] = v
			}
			if h.env["HOME"] == "" {
				h.home = ""
			}
			r := h.run(append([]string{"login"}, tc.args...)...)
			wantCode(t, r, 1)
			if !strings.HasPrefix(r.stderr, tc.want) {
				t.Errorf("stderr = %q, want prefix %q", r.stderr, tc.want)
			}
		})
	}
	if n := len(srv.requests()); n != 0 {
		t.Errorf("the server got %d requests from invalid invocations", n)
	}
}

func jsonEqual(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// Login against a route backed by a real key store: the token the CLI
// stores is one the store verifies, under the requested name and TTL.
func TestLoginWithKeyStore(t *testing.T) {
	store, err := auth.Open(t.Context(), filepath.Join(t.TempDir(), "auth.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer master" {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"error":"Invalid API key"}`)
			return
		}
		var body struct {
			Name  string `json:"name"`
			TTLMs int64  `json:"ttlMs"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("decode: %v", err)
		}
		c, err := store.Create(r.Context(), body.Name, "", time.Duration(body.TTLMs)*time.Millisecond)
		if err != nil {
			t.Errorf("Create: %v", err)
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{
			"token": c.Token, "expiresAt": c.ExpiresAt.Format("2006-01-02T15:04:05.000Z"), "keyId": c.ID,
		})
	}))
	defer srv.Close()
	h := newHarness(t)
	wantCode(t, h.run("login", "--host", srv.URL, "--key", "master", "--name", "ci", "--ttl", "3600000"), 0)
	var creds credentials
	data, err := os.ReadFile(filepath.Join(h.home, ".isol8", "credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &creds); err != nil {
		t.Fatal(err)
	}
	k, err := store.Verify(t.Context(), creds.Token)
	if err != nil {
		t.Fatalf("stored token does not verify: %v", err)
	}
	if k.ID != creds.KeyID || k.Name != "ci" || k.ExpiresAt.Sub(k.CreatedAt) != time.Hour {
		t.Errorf("key = %+v, credentials = %+v", k, creds)
	}
}

package remotecode

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/errdefs"
)

// mapResolver answers from a fixed table; other names do not exist.
type mapResolver map[string][]netip.Addr

func (m mapResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := m[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// codeServer serves body at every path and counts requests.
type codeServer struct {
	*httptest.Server
	hits atomic.Int64
}

func newCodeServer(t *testing.T, h http.HandlerFunc) *codeServer {
	t.Helper()
	s := &codeServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func serveText(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(body)) }
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// open is a policy for loopback test servers over http.
func open() Policy {
	return Policy{Enabled: true, AllowedSchemes: []string{"http", "https"}}
}

func loopback() *Fetcher { return &Fetcher{AllowPrivateDestinations: true} }

func mustFail(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q, want it to contain %q", err, want)
	}
}

func TestFetchHashMatch(t *testing.T) {
	const code = "print('ok')"
	// The reference's conformance hash of print('ok').
	const want = "e651ef002de96727cf3b1f8533ebb5c1036d12d795ec486c4cbd4ed2872fde31"
	s := newCodeServer(t, serveText(code))
	got, err := loopback().Fetch(t.Context(), open(), Source{URL: s.URL + "/x.py", Hash: strings.ToUpper(want), AllowInsecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if got.Text != code || got.SHA256 != want || got.FinalURL != s.URL+"/x.py" {
		t.Fatalf("got %+v", got)
	}
}

func TestFetchHashMismatch(t *testing.T) {
	s := newCodeServer(t, serveText("print('evil')"))
	wrong := sum("print('ok')")
	_, err := loopback().Fetch(t.Context(), open(), Source{URL: s.URL + "/x.py", Hash: wrong, AllowInsecure: true})
	mustFail(t, err, "Remote code hash mismatch: expected "+wrong+", got "+sum("print('evil')"))
	if !errdefs.IsInvalidArgument(err) {
		t.Fatalf("class: %v", err)
	}
}

func TestFetchRefusalsBeforeAnyRequest(t *testing.T) {
	s := newCodeServer(t, serveText("print(1)"))
	cases := []struct {
		name string
		f    *Fetcher
		p    Policy
		src  Source
		want string
	}{
		{"disabled", loopback(), Policy{}, Source{URL: s.URL, AllowInsecure: true}, TextDisabled},
		{"http without the flag", loopback(), open(), Source{URL: s.URL}, TextInsecure},
		{"http not in schemes", loopback(), Policy{Enabled: true}, Source{URL: s.URL, AllowInsecure: true}, "URL scheme not allowed: http"},
		{"file scheme", loopback(), Policy{Enabled: true, AllowedSchemes: []string{"file"}}, Source{URL: "file:///etc/passwd"}, "Invalid code URL"},
		{"ftp listed", loopback(), Policy{Enabled: true, AllowedSchemes: []string{"ftp"}}, Source{URL: "ftp://h/x"}, "URL scheme not allowed: ftp"},
		{"blocked pattern", loopback(), Policy{Enabled: true, AllowedSchemes: []string{"http"}, BlockedHosts: []string{`^127\.`}},
			Source{URL: s.URL, AllowInsecure: true}, "Blocked code URL host: 127.0.0.1"},
		{"not allowed pattern", loopback(), Policy{Enabled: true, AllowedSchemes: []string{"http"}, AllowedHosts: [][]string{{`^example\.com$`}}},
			Source{URL: s.URL, AllowInsecure: true}, "Blocked code URL host: 127.0.0.1"},
		{"loopback with the guard closed", &Fetcher{}, open(), Source{URL: s.URL, AllowInsecure: true}, "Blocked code URL host: 127.0.0.1"},
		{"name resolving to loopback", &Fetcher{Resolver: mapResolver{"code.test": {netip.MustParseAddr("127.0.0.1")}}}, open(),
			Source{URL: strings.Replace(s.URL, "127.0.0.1", "code.test", 1), AllowInsecure: true}, "Blocked code URL host: code.test"},
		{"inet_aton loopback", &Fetcher{}, open(), Source{URL: "http://2130706433:" + s.URL[strings.LastIndex(s.URL, ":")+1:], AllowInsecure: true}, "Blocked code URL host"},
		{"unknown name", &Fetcher{Resolver: mapResolver{}}, open(), Source{URL: "http://nowhere.test/x.py", AllowInsecure: true}, "Failed to resolve code URL host: nowhere.test"},
		{"hash required", loopback(), Policy{Enabled: true, AllowedSchemes: []string{"http"}, RequireHash: true}, Source{URL: s.URL, AllowInsecure: true}, TextHashRequired},
		{"bad hash", loopback(), open(), Source{URL: s.URL, Hash: "abc", AllowInsecure: true}, "Invalid codeHash"},
		{"no host", loopback(), open(), Source{URL: "http:///x.py", AllowInsecure: true}, "Invalid code URL"},
		{"garbage", loopback(), open(), Source{URL: "::", AllowInsecure: true}, "Invalid code URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.f.Fetch(t.Context(), c.p, c.src)
			mustFail(t, err, c.want)
		})
	}
	if n := s.hits.Load(); n != 0 {
		t.Fatalf("the server got %d requests; every refusal must come before any request", n)
	}
}

func TestFetchSizeCap(t *testing.T) {
	t.Run("declared length", func(t *testing.T) {
		s := newCodeServer(t, serveText("print('hi')"))
		p := open()
		p.MaxCodeSize = 4
		_, err := loopback().Fetch(t.Context(), p, Source{URL: s.URL, AllowInsecure: true})
		mustFail(t, err, "Remote code exceeds maxCodeSize (4 bytes): 11 bytes")
	})
	t.Run("endless stream", func(t *testing.T) {
		// No Content-Length and no end: only a cap enforced while reading
		// can stop this.
		var sent atomic.Int64
		s := newCodeServer(t, func(w http.ResponseWriter, r *http.Request) {
			chunk := []byte(strings.Repeat("a", 4096))
			for r.Context().Err() == nil {
				n, err := w.Write(chunk)
				sent.Add(int64(n))
				if err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		})
		p := open()
		p.MaxCodeSize = 64 << 10
		start := time.Now()
		_, err := loopback().Fetch(t.Context(), p, Source{URL: s.URL, AllowInsecure: true})
		mustFail(t, err, "Remote code exceeds maxCodeSize (65536 bytes)")
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("took %s", d)
		}
	})
}

func TestFetchContentChecks(t *testing.T) {
	cases := map[string]struct {
		h    http.HandlerFunc
		want string
	}{
		"404":    {func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no", 404) }, "Failed to fetch remote code: HTTP 404"},
		"empty":  {func(http.ResponseWriter, *http.Request) {}, TextEmptyBody},
		"binary": {serveText("print(1)\x00"), TextBinary},
		"latin1": {serveText("print('\xe9')"), "not valid UTF-8"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			s := newCodeServer(t, c.h)
			_, err := loopback().Fetch(t.Context(), open(), Source{URL: s.URL, AllowInsecure: true})
			mustFail(t, err, c.want)
		})
	}
}

func TestFetchTimeout(t *testing.T) {
	release := make(chan struct{})
	s := newCodeServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	p := open()
	p.FetchTimeout = 300 * time.Millisecond
	start := time.Now()
	_, err := loopback().Fetch(t.Context(), p, Source{URL: s.URL, AllowInsecure: true})
	mustFail(t, err, "Remote code fetch timed out after 300ms")
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %s", d)
	}
}

// publicFetcher makes names resolve to public addresses and, after the
// guard approved an address, connects to the loopback test server standing
// in for it. The guard itself stays closed for internal addresses.
func publicFetcher(names map[string]string, servers map[string]*codeServer) *Fetcher {
	res := mapResolver{}
	for n, a := range names {
		res[n] = []netip.Addr{netip.MustParseAddr(a)}
	}
	return &Fetcher{
		Resolver: res,
		remap: func(ap netip.AddrPort) netip.AddrPort {
			if s, ok := servers[ap.Addr().String()]; ok {
				return netip.MustParseAddrPort(strings.TrimPrefix(s.URL, "http://"))
			}
			return ap
		},
	}
}

func TestFetchRedirects(t *testing.T) {
	const code = "print('via redirect')"
	target := newCodeServer(t, serveText(code))
	targetPort := target.URL[strings.LastIndex(target.URL, ":")+1:]
	redirectTo := func(loc string) *codeServer {
		return newCodeServer(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, loc, http.StatusFound)
		})
	}
	cases := []struct {
		name     string
		location string
		policy   func(*Policy)
		insecure bool
		want     string // "" = success
	}{
		{"to a public host", "http://cdn.test:" + targetPort + "/x.py", nil, true, ""},
		{"to a loopback literal", target.URL + "/x.py", nil, true, "Blocked code URL host: 127.0.0.1"},
		{"to a name of a private address", "http://internal.test:" + targetPort + "/x.py", nil, true, "Blocked code URL host: internal.test"},
		{"to the metadata address", "http://169.254.169.254/latest/meta-data", nil, true, "Blocked code URL host: 169.254.169.254"},
		{"to a blocked pattern", "http://cdn.test:" + targetPort + "/x.py", func(p *Policy) { p.BlockedHosts = []string{`^cdn\.test$`} }, true, "Blocked code URL host: cdn.test"},
		{"to a host outside allowedHosts", "http://cdn.test:" + targetPort + "/x.py", func(p *Policy) { p.AllowedHosts = [][]string{{`^origin\.test$`}} }, true, "Blocked code URL host: cdn.test"},
		{"to a disallowed scheme", "ftp://cdn.test/x.py", nil, true, "URL scheme not allowed: ftp"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := target.hits.Load()
			origin := redirectTo(c.location)
			f := publicFetcher(
				map[string]string{"origin.test": "93.184.216.34", "cdn.test": "93.184.216.35", "internal.test": "10.1.2.3"},
				map[string]*codeServer{"93.184.216.34": origin, "93.184.216.35": target},
			)
			p := open()
			if c.policy != nil {
				c.policy(&p)
			}
			originPort := origin.URL[strings.LastIndex(origin.URL, ":")+1:]
			got, err := f.Fetch(t.Context(), p, Source{URL: "http://origin.test:" + originPort + "/x.py", AllowInsecure: c.insecure})
			if c.want == "" {
				if err != nil || got.Text != code {
					t.Fatalf("got %+v, %v", got, err)
				}
				return
			}
			mustFail(t, err, c.want)
			if origin.hits.Load() != 1 || target.hits.Load() != before {
				t.Fatalf("origin hits %d, target hits %d (want 1, %d)", origin.hits.Load(), target.hits.Load(), before)
			}
		})
	}
	t.Run("https to http", func(t *testing.T) {
		// Every hop passes checkURL: a redirect may not downgrade to http
		// unless the request allowed http.
		u, _ := parseURL("http://cdn.test/x.py")
		rules, _ := open().rules()
		mustFail(t, checkURL(u, open(), rules, false), TextInsecure)
	})
	t.Run("too many", func(t *testing.T) {
		var loop *codeServer
		loop = newCodeServer(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, loop.URL+"/again", http.StatusFound)
		})
		p := open()
		p.MaxRedirects = 3
		_, err := loopback().Fetch(t.Context(), p, Source{URL: loop.URL, AllowInsecure: true})
		mustFail(t, err, "more than 3 redirects")
		if n := loop.hits.Load(); n != 4 {
			t.Fatalf("%d requests, want 4", n)
		}
	})
}

// TestFetchIgnoresEnvProxy: a proxy from the environment would dial for
// us, past the guard.
func TestFetchIgnoresEnvProxy(t *testing.T) {
	proxy := newCodeServer(t, serveText("print('from the proxy')"))
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("HTTPS_PROXY", proxy.URL)
	t.Setenv("NO_PROXY", "")
	f := publicFetcher(map[string]string{"origin.test": "93.184.216.34"}, nil)
	_, err := f.Fetch(t.Context(), open(), Source{URL: "http://origin.test:1/x.py", AllowInsecure: true})
	if err == nil {
		t.Fatal("fetch succeeded")
	}
	if n := proxy.hits.Load(); n != 0 {
		t.Fatalf("the environment's proxy got %d requests", n)
	}
}

// slowResolver answers only when ctx ends.
type slowResolver struct{}

func (slowResolver) LookupNetIP(ctx context.Context, _, host string) ([]netip.Addr, error) {
	<-ctx.Done()
	return nil, &net.DNSError{Err: ctx.Err().Error(), Name: host, IsTimeout: true}
}

// The timeout covers the name lookup too.
func TestFetchTimeoutCoversDNS(t *testing.T) {
	p := open()
	p.FetchTimeout = 200 * time.Millisecond
	start := time.Now()
	_, err := (&Fetcher{Resolver: slowResolver{}}).Fetch(t.Context(), p, Source{URL: "https://slow.test/x.py"})
	mustFail(t, err, "Remote code fetch timed out after 200ms")
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %s", d)
	}
}

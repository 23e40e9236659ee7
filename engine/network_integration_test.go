package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"

)

// testResolver is the DNS of the tests' proxies: names ending in .isol8.test
// resolve to host loopback, everything else fails (no outside traffic).
type testResolver struct{}

func (testResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if strings.HasSuffix(host, ".isol8.test") {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	return nil, fmt.Errorf("lookup %s: no such host (test resolver)", host)
}

// netServers are an HTTP and a TLS server on host loopback.
type netServers struct {
	http, tls         *httptest.Server
	httpPort, tlsPort string
}

func startNetServers(t *testing.T) *netServers {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s %s", strings.Split(r.Host, ":")[0], r.URL.Path)
	})
	s := &netServers{http: httptest.NewServer(h), tls: httptest.NewTLSServer(h)}
	t.Cleanup(s.http.Close)
	t.Cleanup(s.tls.Close)
	_, s.httpPort, _ = net.SplitHostPort(s.http.Listener.Addr().String())
	_, s.tlsPort, _ = net.SplitHostPort(s.tls.Listener.Addr().String())
	return s
}

// fetchPy fetches each URL through the environment's proxy (urllib reads
// HTTP_PROXY/HTTPS_PROXY) and prints one line per URL: the status and body,
// or ERR and the exception.
const fetchPy = `
import sys, ssl, urllib.request, urllib.error
ctx = ssl._create_unverified_context()
for u in URLS:
    try:
        r = urllib.request.urlopen(u, timeout=10, context=ctx)
        print(r.status, r.read().decode())
    except urllib.error.HTTPError as e:
        print(e.code, e.read().decode())
    except Exception as e:
        print("ERR", type(e).__name__, str(e)[:80])
`

func fetchCode(urls ...string) string {
	b, _ := json.Marshal(urls)
	return "URLS = " + string(b) + "\n" + fetchPy
}

func filteredOpts(allow, deny []string) Options {
	o := Options{Network: NetworkFiltered, LogNetwork: true}
	if allow != nil || deny != nil {
		o.NetworkFilter = &NetworkFilter{Whitelist: allow, Blacklist: deny}
	}
	return o
}

func runPy(t *testing.T, e *Engine, code string) *Result {
	t.Helper()
	res, err := e.Execute(t.Context(), Request{Runtime: "python", Code: code, TimeoutMs: 60000})
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	return res
}

func lines(s string) []string { return strings.Split(strings.TrimSpace(s), "\n") }

func TestNetworkFilteredAllowDeny(t *testing.T) {
	srv := startNetServers(t)
	h := newTestHost(t, HostOptions{AllowPrivateDestinations: true, Resolver: testResolver{}})
	e := hostView(t, h, filteredOpts([]string{`^allowed\.isol8\.test$`, `^127\.0\.0\.1$`}, []string{`^denied`, `^127\.0\.0\.1$`}))
	mustHaveImage(t, e, "python")
	res := runPy(t, e, fetchCode(
		"http://allowed.isol8.test:"+srv.httpPort+"/a",
		"https://allowed.isol8.test:"+srv.tlsPort+"/b",
		"http://denied.isol8.test:"+srv.httpPort+"/",
		"https://denied.isol8.test:"+srv.tlsPort+"/",
		"http://unlisted.isol8.test:"+srv.httpPort+"/",
		// in both lists: deny wins
		"http://127.0.0.1:"+srv.httpPort+"/",
	))
	want := []string{
		"200 hello allowed.isol8.test /a",
		"200 hello allowed.isol8.test /b",
		"403 isol8: request to denied.isol8.test blocked by network filter",
		"ERR URLError <urlopen error Tunnel connection failed: 403 Forbidden>",
		"403 isol8: request to unlisted.isol8.test blocked by network filter",
		"403 isol8: request to 127.0.0.1 blocked by network filter",
	}
	if got := lines(res.Stdout); !slices.Equal(got, want) {
		t.Fatalf("stdout:\n%s\nstderr: %s\nwant:\n%s", res.Stdout, res.Stderr, strings.Join(want, "\n"))
	}
	t.Logf("logs: %+v", res.NetworkLogs)
}

package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/internal/testenv"
	"github.com/isol8/isol8/netns"
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
	// Patterns are unanchored, as documented: `allowed\.isol8\.test`
	// also admits a host that merely contains it; the anchored form does
	// not. Matching ignores case.
	loose := hostView(t, h, filteredOpts([]string{`ALLOWED\.isol8\.test`}, nil))
	strict := hostView(t, h, filteredOpts([]string{`^allowed\.isol8\.test$`}, nil))
	sneaky := "http://allowed.isol8.test.evil.isol8.test:" + srv.httpPort + "/"
	if got := strings.TrimSpace(runPy(t, loose, fetchCode(sneaky)).Stdout); got != "200 hello allowed.isol8.test.evil.isol8.test /" {
		t.Errorf("unanchored pattern: %q", got)
	}
	if got := strings.TrimSpace(runPy(t, strict, fetchCode(sneaky)).Stdout); !strings.HasPrefix(got, "403 ") {
		t.Errorf("anchored pattern: %q", got)
	}
}

// probePy tries every way out of the sandbox but the proxy and prints one
// line per attempt: "blocked <what>: <error>" or "LEAK <what>".
const probePy = `
import socket, time
def attempt(what, fn):
    t0 = time.time()
    try:
        fn()
        print("LEAK", what)
    except Exception as e:
        print("blocked %s (%.1fs): %s" % (what, time.time() - t0, type(e).__name__))
def tcp(host, port, fam=socket.AF_INET):
    s = socket.socket(fam, socket.SOCK_STREAM); s.settimeout(3)
    try: s.connect((host, port))
    finally: s.close()
def udp(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
    try:
        s.connect((host, port)); s.send(b"x"); s.recv(10)
    finally: s.close()
def raw():
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); s.settimeout(3)
    try:
        s.sendto(b"\x08\x00\xf7\xff\x00\x00\x00\x00", ("10.0.0.1", 0)); s.recvfrom(10)
    finally: s.close()
attempt("tcp 127.0.0.1:PORT", lambda: tcp("127.0.0.1", PORT))
attempt("tcp [::1]:PORT", lambda: tcp("::1", PORT, socket.AF_INET6))
attempt("tcp 10.0.0.1:80", lambda: tcp("10.0.0.1", 80))
attempt("tcp 2001:db8::1:80", lambda: tcp("2001:db8::1", 80, socket.AF_INET6))
attempt("udp 10.0.0.1:53", lambda: udp("10.0.0.1", 53))
attempt("udp 127.0.0.1:PORT", lambda: udp("127.0.0.1", PORT))
attempt("raw icmp", raw)
attempt("dns", lambda: socket.getaddrinfo("allowed.isol8.test", 80))
print("interfaces", sorted(l.split(":")[0].strip() for l in open("/proc/net/dev").readlines()[2:]))
`

func probeCode(port string) string { return strings.ReplaceAll(probePy, "PORT", port) }

func checkProbe(t *testing.T, res *Result) {
	t.Helper()
	t.Logf("probe:\n%s", res.Stdout)
	got := lines(res.Stdout)
	if len(got) != 9 || strings.Contains(res.Stdout, "LEAK") || got[8] != "interfaces ['lo']" {
		t.Fatalf("probe:\n%s\nstderr: %s", res.Stdout, res.Stderr)
	}
	for _, l := range got[:8] {
		// Fast failures: nothing out there to wait for.
		if !strings.Contains(l, "(0.") && !strings.Contains(l, "(1.") {
			t.Errorf("slow failure: %s", l)
		}
	}
}

// none: only lo, and nothing anywhere answers, fast.
func TestNetworkNoneOnlyLoopback(t *testing.T) {
	srv := startNetServers(t)
	e := newTestEngine(t, Options{Network: NetworkNone, LogNetwork: true})
	mustHaveImage(t, e, "python")
	res := runPy(t, e, probeCode(srv.httpPort))
	checkProbe(t, res)
	if res.NetworkLogs != nil {
		t.Errorf("network none has networkLogs: %+v", res.NetworkLogs)
	}
}

// filtered: the proxy is the only way out; the sandbox's 127.0.0.1 is its
// own, so the host's test server is not reachable directly.
func TestNetworkFilteredNoBypass(t *testing.T) {
	srv := startNetServers(t)
	h := newTestHost(t, HostOptions{AllowPrivateDestinations: true, Resolver: testResolver{}})
	e := hostView(t, h, filteredOpts(nil, nil))
	mustHaveImage(t, e, "python")
	res := runPy(t, e, probeCode(srv.httpPort))
	checkProbe(t, res)
	// The same sandbox reaches the server through the proxy.
	res = runPy(t, e, fetchCode("http://allowed.isol8.test:"+srv.httpPort+"/x"))
	if strings.TrimSpace(res.Stdout) != "200 hello allowed.isol8.test /x" {
		t.Fatalf("through the proxy: %q %q", res.Stdout, res.Stderr)
	}
	// From the host side too: the namespace holds lo only.
	var sb *sandbox
	h.mu.Lock()
	for _, s := range h.live {
		sb = s
	}
	h.mu.Unlock()
	if sb == nil || sb.netns == "" {
		t.Fatal("no pooled filtered sandbox with a namespace")
	}
	links, err := netns.Links(sb.netns)
	if err != nil || !slices.Equal(links, []string{"lo"}) {
		t.Fatalf("links in %s: %v %v", sb.netns, links, err)
	}
}

// With the SSRF guard on (the default), the proxy refuses every spelling
// of an internal destination, on the address it would dial.
func TestNetworkFilteredSSRFGuard(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	h := newTestHost(t, HostOptions{Resolver: testResolver{}})
	e := hostView(t, h, filteredOpts(nil, nil))
	mustHaveImage(t, e, "python")
	hosts := []string{"127.0.0.1", "10.0.0.1", "169.254.169.254", "[::1]", "[::ffff:127.0.0.1]", "2130706433", "0x7f.1", "rebind.isol8.test"}
	var urls []string
	for _, hst := range hosts {
		urls = append(urls, "http://"+hst+":"+port+"/")
	}
	urls = append(urls, "https://rebind.isol8.test:"+port+"/")
	res := runPy(t, e, fetchCode(urls...))
	got := lines(res.Stdout)
	if len(got) != len(urls) {
		t.Fatalf("stdout:\n%s\nstderr: %s", res.Stdout, res.Stderr)
	}
	for i, l := range got[:len(hosts)] {
		if !strings.HasPrefix(l, "403 isol8: request to ") || !strings.Contains(l, "blocked: private destination") {
			t.Errorf("%s: %q, want a 403 from the guard", urls[i], l)
		}
	}
	if last := got[len(got)-1]; !strings.Contains(last, "Tunnel connection failed: 403") {
		t.Errorf("CONNECT to a name resolving to loopback: %q", last)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the test server was reached %d times", n)
	}
	if len(res.SecurityEvents) != len(urls) || res.SecurityEvents[0].Details["reason"] != "private_destination" {
		t.Fatalf("security events: %+v", res.SecurityEvents)
	}
	// A host the operator vouches for (a private mirror) passes the guard;
	// its neighbours do not.
	o := filteredOpts(nil, nil)
	o.TrustedNetworkHosts = []string{"mirror.isol8.test"}
	mirror := hostView(t, h, o)
	res = runPy(t, mirror, fetchCode("http://mirror.isol8.test:"+port+"/", "http://rebind.isol8.test:"+port+"/"))
	if got := lines(res.Stdout); len(got) != 2 || got[0] != "200 " || !strings.Contains(got[1], "private destination") {
		t.Fatalf("trusted host: %q (stderr %q)", res.Stdout, res.Stderr)
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("the test server was reached %d times, want once", n)
	}
}

// sniPy opens a CONNECT tunnel by hand and runs TLS with the given server
// name over it.
const sniPy = `
import socket, ssl
def tls(target, sni):
    s = socket.create_connection(("127.0.0.1", 8118), timeout=10)
    s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    status = head.split(b" ")[1].decode()
    if status != "200":
        return "status " + status
    ctx = ssl._create_unverified_context()
    try:
        t = ctx.wrap_socket(s, server_hostname=sni)
        t.sendall(b"GET /sni HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return "reached " + t.recv(4096).decode().split("\r\n")[0]
    except Exception as e:
        return "refused " + type(e).__name__
print(tls(TARGET, "front.isol8.test"))
print(tls(TARGET, "hidden.isol8.test"))
`

func TestNetworkFilteredSNIMismatch(t *testing.T) {
	srv := startNetServers(t)
	var mu sync.Mutex
	var hooked, hostHooked []api.SecurityEvent
	h := newTestHost(t, HostOptions{AllowPrivateDestinations: true, Resolver: testResolver{},
		OnSecurityEvent: func(ev api.SecurityEvent) { mu.Lock(); hostHooked = append(hostHooked, ev); mu.Unlock() }})
	o := filteredOpts(nil, nil)
	o.OnSecurityEvent = func(ev api.SecurityEvent) { mu.Lock(); hooked = append(hooked, ev); mu.Unlock() }
	e := hostView(t, h, o)
	mustHaveImage(t, e, "python")
	code := strings.ReplaceAll(sniPy, "TARGET", `"front.isol8.test:`+srv.tlsPort+`"`)
	res := runPy(t, e, code)
	got := lines(res.Stdout)
	if len(got) != 2 || got[0] != "reached HTTP/1.1 200 OK" || !strings.HasPrefix(got[1], "refused ") {
		t.Fatalf("stdout:\n%s\nstderr: %s", res.Stdout, res.Stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hooked) != 1 || hooked[0].Details["reason"] != "sni_mismatch" || hooked[0].Details["host"] != "front.isol8.test" {
		t.Fatalf("hook saw %+v", hooked)
	}
	if len(hostHooked) != 1 || hostHooked[0].Details["reason"] != "sni_mismatch" {
		t.Fatalf("host hook saw %+v", hostHooked)
	}
	if len(res.SecurityEvents) != 1 {
		t.Fatalf("result events %+v", res.SecurityEvents)
	}
}

// networkLogs list allowed and blocked requests in the order they came,
// with the documented fields; without logNetwork there are none.
func TestNetworkLogsInOrder(t *testing.T) {
	srv := startNetServers(t)
	h := newTestHost(t, HostOptions{AllowPrivateDestinations: true, Resolver: testResolver{}})
	e := hostView(t, h, filteredOpts([]string{`allowed`}, nil))
	mustHaveImage(t, e, "python")
	code := fetchCode("http://allowed.isol8.test:"+srv.httpPort+"/one?q=1",
		"http://blocked.isol8.test:"+srv.httpPort+"/two",
		"https://allowed.isol8.test:"+srv.tlsPort+"/three",
		"https://blocked.isol8.test:"+srv.tlsPort+"/four")
	res := runPy(t, e, code)
	type row struct{ method, host, path, action, rule string }
	want := []row{
		{"GET", "allowed.isol8.test", "/one?q=1", "ALLOW", "whitelist:allowed"},
		{"GET", "blocked.isol8.test", "/two", "BLOCK", "no whitelist match"},
		{"CONNECT", "allowed.isol8.test", "", "ALLOW", "whitelist:allowed"},
		{"CONNECT", "blocked.isol8.test", "", "BLOCK", "no whitelist match"},
	}
	if len(res.NetworkLogs) != len(want) {
		t.Fatalf("networkLogs %+v\nstdout %s", res.NetworkLogs, res.Stdout)
	}
	for i, w := range want {
		l := res.NetworkLogs[i]
		path := ""
		if l.Path != nil {
			path = *l.Path
		}
		if (l.Method == "CONNECT") != (l.Path == nil) {
			t.Errorf("entry %d: path %v for %s", i, l.Path, l.Method)
		}
		if (row{l.Method, l.Host, path, l.Action, l.Rule}) != w {
			t.Errorf("entry %d = %+v, want %+v", i, l, w)
		}
		if _, err := time.Parse(time.RFC3339, l.Timestamp); err != nil {
			t.Errorf("entry %d timestamp %q: %v", i, l.Timestamp, err)
		}
	}
	if l := res.NetworkLogs[2]; l.Status != 200 || l.BytesSent == 0 || l.BytesReceived == 0 {
		t.Errorf("tunnel entry without traffic: %+v", l)
	}
	if l := res.NetworkLogs[1]; l.Status != 403 || l.DurationMs != 0 {
		t.Errorf("blocked entry: %+v", l)
	}
	b, _ := json.Marshal(res)
	if !strings.Contains(string(b), `"networkLogs":[{"timestamp":`) || !strings.Contains(string(b), `"method":"CONNECT","host":"allowed.isol8.test","path":null,"action":"ALLOW"`) {
		t.Errorf("JSON: %s", b)
	}
	// The next execution on the pooled sandbox starts with an empty log.
	quiet := hostView(t, h, Options{Network: NetworkFiltered})
	res = runPy(t, quiet, fetchCode("http://allowed.isol8.test:"+srv.httpPort+"/"))
	if res.NetworkLogs != nil || strings.TrimSpace(res.Stdout) != "200 hello allowed.isol8.test /" {
		t.Fatalf("logNetwork off: logs %+v, stdout %q", res.NetworkLogs, res.Stdout)
	}
}

// 20 filtered sandboxes at once, on one host and pool, each with its own
// policy: each reaches its own host and no other.
func TestNetworkFilteredParallel(t *testing.T) {
	srv := startNetServers(t)
	h := newTestHost(t, HostOptions{AllowPrivateDestinations: true, Resolver: testResolver{}, MaxConcurrent: 20})
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		e := hostView(t, h, filteredOpts([]string{fmt.Sprintf(`^s%d\.isol8\.test$`, i)}, nil))
		if i == 0 {
			mustHaveImage(t, e, "python")
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := fmt.Sprintf("http://s%d.isol8.test:%s/", i, srv.httpPort)
			other := fmt.Sprintf("http://s%d.isol8.test:%s/", (i+1)%n, srv.httpPort)
			res, err := e.Execute(t.Context(), Request{Runtime: "python", Code: fetchCode(own, other), TimeoutMs: 120000})
			if err != nil {
				errs <- fmt.Errorf("sandbox %d: %w", i, err)
				return
			}
			want := fmt.Sprintf("200 hello s%d.isol8.test /\n403 isol8: request to s%d.isol8.test blocked by network filter", i, (i+1)%n)
			if strings.TrimSpace(res.Stdout) != want {
				errs <- fmt.Errorf("sandbox %d: %q (stderr %q), want %q", i, res.Stdout, res.Stderr, want)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// holdTunnelPy opens a tunnel to the echo server through the proxy, proves
// it works, and holds it: in a background process that outlives the run
// when BACKGROUND is true, else in the program itself for a minute.
const holdTunnelPy = `
import os, socket, sys, time
def hold():
    s = socket.create_connection(("127.0.0.1", 8118), timeout=10)
    s.sendall(b"CONNECT echo.isol8.test:PORT HTTP/1.1\r\nHost: echo.isol8.test:PORT\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    s.sendall(b"ping\n")
    assert s.recv(5) == b"ping\n"
    print("tunnel up", flush=True)
    time.sleep(60)
if BACKGROUND:
    r, w = os.pipe()
    if os.fork() == 0:
        os.setsid()
        os.dup2(w, 1)
        hold()
        os._exit(0)
    os.close(w)
    print(os.read(r, 100).decode().strip())
else:
    hold()
`

// echoServer echoes lines and reports each connection's end.
func echoServer(t *testing.T) (port string, closed <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan struct{}, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_, _ = io.Copy(c, c)
				c.Close()
				ch <- struct{}{}
			}()
		}
	}()
	_, port, _ = net.SplitHostPort(ln.Addr().String())
	return port, ch
}

func socketFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

// Nothing of a filtered sandbox outlives it: tunnels end with the
// execution (normal end, timeout, cancellation), and after the host stops
// no namespace pin, mount, listener or goroutine is left.
func TestNetworkFilteredNoLeaks(t *testing.T) {
	addr := testenv.MustHaveContainerd(t)
	port, closed := echoServer(t)
	h, err := NewHost(HostOptions{InitPath: testenv.InitBinary(t), Containerd: ContainerdOptions{Address: addr},
		NewDriver: containerdDriver(addr), AllowPrivateDestinations: true, Resolver: testResolver{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = h.Stop(context.Background())
		}
	})
	baseG, baseFD := runtime.NumGoroutine(), socketFDs(t)

	// Every sandbox the host makes, seen while it lives.
	ids := map[string]bool{}
	var idMu sync.Mutex
	watch := func() {
		h.mu.Lock()
		idMu.Lock()
		for id := range h.live {
			ids[id] = true
		}
		idMu.Unlock()
		h.mu.Unlock()
	}
	stopWatch := make(chan struct{})
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for {
			watch()
			select {
			case <-stopWatch:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()

	e := hostView(t, h, filteredOpts(nil, nil))
	mustHaveImage(t, e, "python")
	code := func(bg bool) string {
		c := strings.ReplaceAll(holdTunnelPy, "PORT", port)
		return strings.ReplaceAll(c, "BACKGROUND", map[bool]string{true: "True", false: "False"}[bg])
	}
	waitClosed := func(what string) {
		t.Helper()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the tunnel to the echo server is still open", what)
		}
	}

	// 1. A background process keeps a tunnel past the end of the run; the
	// release of the pooled sandbox closes it.
	res, err := e.Execute(t.Context(), Request{Runtime: "python", Code: code(true), TimeoutMs: 30000})
	if err != nil || strings.TrimSpace(res.Stdout) != "tunnel up" {
		t.Fatalf("background tunnel: %v %+v", err, res)
	}
	waitClosed("after the run")

	// 2. The run times out while its tunnel is open.
	res, err = e.Execute(t.Context(), Request{Runtime: "python", Code: code(false), TimeoutMs: 3000})
	if err != nil || !res.TimedOut || !strings.Contains(res.Stdout, "tunnel up") {
		t.Fatalf("timeout: %v %+v", err, res)
	}
	waitClosed("after the timeout")

	// 3. The caller cancels while the tunnel is open.
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := e.ExecuteStream(ctx, Request{Runtime: "python", Code: code(false), TimeoutMs: 30000})
	if err != nil {
		t.Fatal(err)
	}
	for ev := range ch {
		if ev.Type == EventStdout && strings.Contains(ev.Data, "tunnel up") {
			cancel()
		}
	}
	cancel()
	waitClosed("after the cancellation")

	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	stopped = true
	close(stopWatch)
	<-watchDone
	if len(ids) == 0 {
		t.Fatal("saw no sandbox")
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for id := range ids {
		if _, err := os.Lstat(filepath.Join("/run/isol8/sandbox-netns", id)); !os.IsNotExist(err) {
			t.Errorf("namespace pin of %s left: %v", id, err)
		}
		if strings.Contains(string(mounts), id) {
			t.Errorf("a mount of %s is left", id)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		g, fd := runtime.NumGoroutine(), socketFDs(t)
		if g <= baseG+2 && fd <= baseFD {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines %d (before %d), sockets %d (before %d)\n%s", g, baseG, fd, baseFD, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A pooled filtered sandbox is reused after proxied traffic: the proxy's
// listener and the TIME_WAIT entries of connections to it do not fail the
// reset check. Each execution still gets only its own policy.
func TestNetworkFilteredPoolReuse(t *testing.T) {
	srv := startNetServers(t)
	h := newTestHost(t, HostOptions{AllowPrivateDestinations: true, Resolver: testResolver{}})
	a := hostView(t, h, filteredOpts([]string{`^a\.isol8\.test$`}, nil))
	b := hostView(t, h, filteredOpts([]string{`^b\.isol8\.test$`}, nil))
	mustHaveImage(t, a, "python")
	code := fetchCode("http://a.isol8.test:"+srv.httpPort+"/", "http://b.isol8.test:"+srv.httpPort+"/",
		"https://a.isol8.test:"+srv.tlsPort+"/")
	var ids []string
	for i, e := range []*Engine{a, b, a} {
		if i > 0 {
			time.Sleep(300 * time.Millisecond) // the reset runs in the background
		}
		res := runPy(t, e, code)
		got := lines(res.Stdout)
		own, other := "a", "b"
		if e == b {
			own, other = "b", "a"
		}
		want := map[string]string{own: "200 hello " + own + ".isol8.test /", other: "403 isol8: request to " + other + ".isol8.test blocked by network filter"}
		if len(got) != 3 || got[0] != want["a"] || got[1] != want["b"] {
			t.Fatalf("run %d: %q (stderr %q)", i, res.Stdout, res.Stderr)
		}
		ids = append(ids, res.ContainerID)
	}
	if ids[0] != ids[1] || ids[1] != ids[2] {
		t.Fatalf("the filtered sandbox was not reused: %v", ids)
	}
}

// Persistent mode keeps one sandbox and its policy; each execution's
// networkLogs hold only that execution's requests.
func TestNetworkFilteredPersistent(t *testing.T) {
	srv := startNetServers(t)
	h := newTestHost(t, HostOptions{AllowPrivateDestinations: true, Resolver: testResolver{}})
	o := filteredOpts([]string{`^p\.isol8\.test$`}, nil)
	o.Mode = ModePersistent
	e := hostView(t, h, o)
	mustHaveImage(t, e, "python")
	for i, path := range []string{"/first", "/second"} {
		res := runPy(t, e, fetchCode("http://p.isol8.test:"+srv.httpPort+path, "http://q.isol8.test:"+srv.httpPort+"/"))
		want := "200 hello p.isol8.test " + path + "\n403 isol8: request to q.isol8.test blocked by network filter"
		if strings.TrimSpace(res.Stdout) != want {
			t.Fatalf("run %d: %q (stderr %q)", i, res.Stdout, res.Stderr)
		}
		if len(res.NetworkLogs) != 2 || *res.NetworkLogs[0].Path != path || res.NetworkLogs[1].Action != "BLOCK" {
			t.Fatalf("run %d logs: %+v", i, res.NetworkLogs)
		}
	}
}

package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/netguard"
)

// mapResolver answers names from a table (the test's DNS).
type mapResolver map[string]string

func (m mapResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := m[host]; ok {
		return []netip.Addr{netip.MustParseAddr(a)}, nil
	}
	return nil, fmt.Errorf("no such host %s", host)
}

func startProxy(t *testing.T, cfg Config, p Policy) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(ln, cfg)
	t.Cleanup(func() { s.Close() })
	s.Attach(p)
	return s, ln.Addr().String()
}

func mustRules(t *testing.T, allow, deny []string) *Rules {
	t.Helper()
	r, err := Compile(allow, deny)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func proxiedClient(addr string) *http.Client {
	u, _ := url.Parse("http://" + addr)
	return &http.Client{Transport: &http.Transport{
		Proxy:           http.ProxyURL(u),
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}, Timeout: 10 * time.Second}
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRules(t *testing.T) {
	cases := []struct {
		allow, deny []string
		host        string
		want        bool
		rule        string
	}{
		{nil, nil, "example.com", true, "no whitelist"},
		{[]string{`^example\.com$`}, nil, "example.com", true, `whitelist:^example\.com$`},
		{[]string{`^example\.com$`}, nil, "httpbin.org", false, "no whitelist match"},
		{[]string{`^example\.com$`}, []string{`^example\.com$`}, "example.com", false, `blacklist:^example\.com$`},
		// Unanchored: a pattern matches anywhere in the host.
		{[]string{`example\.com`}, nil, "evil-example.com.attacker.net", true, `whitelist:example\.com`},
		{nil, []string{"evil"}, "notevil.org", false, "blacklist:evil"},
		// Case-insensitive.
		{[]string{`^EXAMPLE\.com$`}, nil, "example.com", true, `whitelist:^EXAMPLE\.com$`},
	}
	for _, c := range cases {
		d := mustRules(t, c.allow, c.deny).Decide(c.host)
		if d.Allowed != c.want || d.Rule != c.rule {
			t.Errorf("allow %q deny %q host %s: got %+v, want %v %q", c.allow, c.deny, c.host, d, c.want, c.rule)
		}
	}
}

func TestRulesRefuseBadPatterns(t *testing.T) {
	long := strings.Repeat("a", MaxPatternLength+1)
	many := make([]string, MaxPatterns+1)
	for i := range many {
		many[i] = "a"
	}
	for _, c := range []struct {
		allow, deny []string
		want        string
	}{
		{[]string{"(unclosed"}, nil, `whitelist[0]: invalid pattern "(unclosed": missing closing )`},
		{nil, []string{"ok", "^(?!x)"}, `blacklist[1]: invalid pattern "^(?!x)"`},
		{[]string{long}, nil, "whitelist[0] is 1025 bytes long"},
		{many, nil, "whitelist has 257 patterns"},
		{[]string{"a{1001}"}, nil, "invalid repeat count"},
	} {
		_, err := Compile(c.allow, c.deny)
		if err == nil || !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Compile(%q, %q) = %v, want invalid argument containing %q", c.allow, c.deny, err, c.want)
		}
	}
}

func TestForwardAllowDenyAndLogs(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "host=%s path=%s body=%s proxyauth=%q", r.Host, r.URL.Path, b, r.Header.Get("Proxy-Authorization"))
	}))
	defer up.Close()
	_, port, _ := net.SplitHostPort(up.Listener.Addr().String())
	res := mapResolver{"allowed.test": "127.0.0.1", "denied.test": "127.0.0.1", "other.test": "127.0.0.1"}
	var mu sync.Mutex
	var events []api.SecurityEvent
	s, addr := startProxy(t, Config{Guard: netguard.Policy{AllowPrivateDestinations: true}, Resolver: res},
		Policy{Rules: mustRules(t, []string{`^allowed\.test$`, "127"}, []string{"denied"}), Log: true,
			OnEvent: func(e api.SecurityEvent) { mu.Lock(); events = append(events, e); mu.Unlock() }})
	c := proxiedClient(addr)

	code, body := get(t, c, "http://ALLOWED.test.:"+port+"/a?x=1")
	if code != 200 || !strings.Contains(body, "host=allowed.test:"+port) || !strings.Contains(body, "path=/a") {
		t.Fatalf("allowed: %d %q", code, body)
	}
	code, body = get(t, c, "http://denied.test:"+port+"/")
	if code != 403 || body != "isol8: request to denied.test blocked by network filter" {
		t.Fatalf("denied: %d %q", code, body)
	}
	code, body = get(t, c, "http://other.test:"+port+"/")
	if code != 403 || body != "isol8: request to other.test blocked by network filter" {
		t.Fatalf("unlisted: %d %q", code, body)
	}
	// Proxy-* headers are not forwarded; a POST body is.
	req, _ := http.NewRequest("POST", "http://allowed.test:"+port+"/p", strings.NewReader("hello"))
	req.Header.Set("Proxy-Authorization", "secret")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "body=hello") || !strings.Contains(string(b), `proxyauth=""`) {
		t.Fatalf("post: %q", b)
	}
	// Upstream down: 502 with the reference's text.
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadPort := dead.Addr().(*net.TCPAddr).Port
	dead.Close()
	code, body = get(t, c, fmt.Sprintf("http://allowed.test:%d/", deadPort))
	if code != 502 || body != fmt.Sprintf("isol8: proxy error: connection to allowed.test:%d failed", deadPort) {
		t.Fatalf("dead upstream: %d %q", code, body)
	}

	rep := s.Detach()
	want := []struct {
		method, host, action string
		status               int
	}{{"GET", "allowed.test", "ALLOW", 200}, {"GET", "denied.test", "BLOCK", 403}, {"GET", "other.test", "BLOCK", 403},
		{"POST", "allowed.test", "ALLOW", 200}, {"GET", "allowed.test", "ALLOW", 502}}
	if len(rep.Entries) != len(want) {
		t.Fatalf("entries: %+v", rep.Entries)
	}
	for i, w := range want {
		e := rep.Entries[i]
		if e.Method != w.method || e.Host != w.host || e.Action != w.action || e.Status != w.status || e.Path == nil {
			t.Errorf("entry %d = %+v, want %+v", i, e, w)
		}
	}
	if *rep.Entries[0].Path != "/a?x=1" || rep.Entries[0].Rule != `whitelist:^allowed\.test$` || rep.Entries[0].BytesReceived == 0 {
		t.Errorf("entry 0: %+v", rep.Entries[0])
	}
	if rep.Entries[1].Rule != "blacklist:denied" || rep.Entries[2].Rule != "no whitelist match" {
		t.Errorf("rules: %q %q", rep.Entries[1].Rule, rep.Entries[2].Rule)
	}
	if rep.Entries[3].BytesSent != 5 {
		t.Errorf("POST bytes sent = %d, want 5", rep.Entries[3].BytesSent)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(rep.Events) != 2 || len(events) != 2 || events[0].Details["host"] != "denied.test" ||
		events[0].Details["reason"] != "filter_mismatch" || events[0].Type != "network_blocked" ||
		events[0].Message != "Security event: network_blocked" {
		t.Fatalf("events: %+v / %+v", rep.Events, events)
	}
}

// With the guard on, every spelling of an internal address is refused, on
// the address actually dialled.
func TestSSRFGuard(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "reached") }))
	defer up.Close()
	_, port, _ := net.SplitHostPort(up.Listener.Addr().String())
	res := mapResolver{"rebind.test": "127.0.0.1", "meta.test": "169.254.169.254"}
	s, addr := startProxy(t, Config{Resolver: res, ConnectTimeout: 2 * time.Second}, Policy{Log: true})
	c := proxiedClient(addr)
	for _, h := range []string{"127.0.0.1", "10.0.0.1", "169.254.169.254", "[::1]", "[::ffff:127.0.0.1]",
		"2130706433", "0x7f.1", "017700000001", "rebind.test", "meta.test", "[fd00:ec2::254]", "100.64.0.1"} {
		code, body := get(t, c, "http://"+h+":"+port+"/")
		if code != 403 || !strings.Contains(body, "blocked: private destination") {
			t.Errorf("GET %s: %d %q, want 403 private destination", h, code, body)
		}
		// The same through CONNECT.
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "CONNECT %s:%s HTTP/1.1\r\nHost: %s:%s\r\n\r\n", h, port, h, port)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || resp.StatusCode != 403 {
			t.Errorf("CONNECT %s: %v %v", h, resp, err)
		}
		conn.Close()
	}
	rep := s.Detach()
	for _, e := range rep.Entries {
		if e.Action != "BLOCK" || !strings.HasPrefix(e.Rule, "private destination") {
			t.Errorf("entry %+v", e)
		}
	}
	if len(rep.Events) != 24 {
		t.Errorf("%d events, want 24", len(rep.Events))
	}
}

// connectTLS opens a CONNECT tunnel to target and runs a TLS handshake
// with server name sni through it.
func connectTLS(proxyAddr, target, sni string) (string, error) {
	conn, err := net.DialTimeout("tcp", proxyAddr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	tc := tls.Client(conn, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		return "", err
	}
	fmt.Fprintf(tc, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", sni)
	b, err := io.ReadAll(tc)
	return string(b), err
}

func TestConnectSNI(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "tls-ok") }))
	defer up.Close()
	_, port, _ := net.SplitHostPort(up.Listener.Addr().String())
	res := mapResolver{"front.test": "127.0.0.1", "hidden.test": "127.0.0.1"}
	s, addr := startProxy(t, Config{Guard: netguard.Policy{AllowPrivateDestinations: true}, Resolver: res},
		Policy{Rules: mustRules(t, []string{`^front\.test$`, `^127\.0\.0\.1$`}, nil), Log: true})
	if out, err := connectTLS(addr, "front.test:"+port, "front.test"); err != nil || !strings.Contains(out, "tls-ok") {
		t.Fatalf("matching SNI: %q %v", out, err)
	}
	if out, err := connectTLS(addr, "front.test:"+port, "hidden.test"); err == nil {
		t.Fatalf("fronted SNI reached the server: %q", out)
	}
	if out, err := connectTLS(addr, "front.test:"+port, ""); err == nil {
		t.Fatalf("no SNI for a name reached the server: %q", out)
	}
	if out, err := connectTLS(addr, "127.0.0.1:"+port, ""); err != nil || !strings.Contains(out, "tls-ok") {
		t.Fatalf("IP without SNI: %q %v", out, err)
	}
	rep := s.Detach()
	if len(rep.Entries) != 4 {
		t.Fatalf("entries %+v", rep.Entries)
	}
	if e := rep.Entries[0]; e.Method != "CONNECT" || e.Path != nil || e.Action != "ALLOW" || e.Status != 200 || e.BytesReceived == 0 {
		t.Errorf("entry 0: %+v", e)
	}
	for _, i := range []int{1, 2} {
		if e := rep.Entries[i]; e.Action != "BLOCK" || !strings.HasPrefix(e.Rule, "sni mismatch") {
			t.Errorf("entry %d: %+v", i, e)
		}
	}
	if len(rep.Events) != 2 || rep.Events[0].Details["reason"] != "sni_mismatch" {
		t.Errorf("events %+v", rep.Events)
	}
}

func TestConnectBlockedText(t *testing.T) {
	_, addr := startProxy(t, Config{}, Policy{Rules: mustRules(t, nil, []string{`^example\.com$`})})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "CONNECT example.com HTTP/1.1\r\nHost: example.com\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 403 || resp.Header.Get("Content-Type") != "text/plain" || string(b) != "isol8: CONNECT to example.com blocked by network filter" {
		t.Fatalf("%d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
}

// Detach closes open tunnels and refuses connections until the next
// Attach; the tunnel limit holds.
func TestDetachAndTunnelLimit(t *testing.T) {
	echo, _ := net.Listen("tcp", "127.0.0.1:0")
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	target := echo.Addr().String()
	s, addr := startProxy(t, Config{Guard: netguard.Policy{AllowPrivateDestinations: true}, MaxTunnels: 2}, Policy{})
	open := func() (net.Conn, int) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\nping", target, target)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == 200 {
			buf := make([]byte, 4)
			if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping" {
				t.Fatalf("echo through tunnel: %q %v", buf, err)
			}
		}
		return c, resp.StatusCode
	}
	a, ca := open()
	b, cb := open()
	_, cc := open()
	if ca != 200 || cb != 200 || cc != 503 {
		t.Fatalf("statuses %d %d %d, want 200 200 503", ca, cb, cc)
	}
	s.Detach()
	for _, c := range []net.Conn{a, b} {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Fatalf("tunnel still open after Detach: %v", err)
		}
	}
	// Detached: connections are closed at once.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("connection served while detached: %v", err)
	}
	c.Close()
	s.Attach(Policy{})
	d, cd := open()
	defer d.Close()
	if cd != 200 {
		t.Fatalf("after re-attach: %d", cd)
	}
}

// Trusted hosts (the operator's private mirror) may resolve to private
// addresses; every other host still may not, and the rules still apply.
func TestTrustedHosts(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "mirror") }))
	defer up.Close()
	_, port, _ := net.SplitHostPort(up.Listener.Addr().String())
	res := mapResolver{"mirror.test": "127.0.0.1", "other.test": "127.0.0.1"}
	_, addr := startProxy(t, Config{Resolver: res}, Policy{TrustedHosts: []string{"Mirror.Test."},
		Rules: mustRules(t, nil, []string{"^127"})})
	c := proxiedClient(addr)
	if code, body := get(t, c, "http://mirror.test:"+port+"/"); code != 200 || body != "mirror" {
		t.Fatalf("trusted host: %d %q", code, body)
	}
	if code, body := get(t, c, "http://other.test:"+port+"/"); code != 403 || !strings.Contains(body, "private destination") {
		t.Fatalf("untrusted host: %d %q", code, body)
	}
	if code, _ := get(t, c, "http://127.0.0.1:"+port+"/"); code != 403 {
		t.Fatalf("denied literal: %d", code)
	}
	conn, err := dialTunnel(addr, "mirror.test:"+port)
	if err != nil {
		t.Fatalf("tunnel to the trusted host: %v", err)
	}
	conn.Close()
}

// A server that speaks first (SMTP, MySQL) is heard at once through a
// tunnel to a port other than 443: the proxy does not hold its bytes while
// it waits for the client's first bytes.
func TestTunnelServerSpeaksFirst(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "220 hello\n")
		buf := make([]byte, 5)
		io.ReadFull(c, buf)
		c.Write(buf)
	}()
	_, addr := startProxy(t, Config{Guard: netguard.Policy{AllowPrivateDestinations: true}}, Policy{})
	c, err := dialTunnel(addr, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second)) // well below the 10 s hello wait
	banner := make([]byte, 10)
	if _, err := io.ReadFull(c, banner); err != nil || string(banner) != "220 hello\n" {
		t.Fatalf("banner %q %v", banner, err)
	}
	io.WriteString(c, "EHLO\n")
	echo := make([]byte, 5)
	if _, err := io.ReadFull(c, echo); err != nil || string(echo) != "EHLO\n" {
		t.Fatalf("echo %q %v", echo, err)
	}
}

package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	blocked := []string{
		"127.0.0.1", "127.255.1.2", "10.1.2.3", "172.16.0.1", "192.168.1.1",
		"169.254.169.254", "100.64.0.1", "0.0.0.0", "0.1.2.3", "224.0.0.1",
		"255.255.255.255", "240.0.0.1", "198.18.0.1", "192.0.2.1",
		"::1", "::", "fe80::1", "fe80::1%eth0", "fd00:ec2::254", "fc00::1", "ff02::1",
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
		"64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "::127.0.0.1", "2001:db8::1",
	}
	for _, s := range blocked {
		if r := Classify(netip.MustParseAddr(s)); r == "" {
			t.Errorf("Classify(%s) = public, want blocked", s)
		}
	}
	public := []string{"1.1.1.1", "93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:1.1.1.1", "64:ff9b::101:101", "2002:101:101::1"}
	for _, s := range public {
		if r := Classify(netip.MustParseAddr(s)); r != "" {
			t.Errorf("Classify(%s) = %q, want public", s, r)
		}
	}
	if r := Classify(netip.MustParseAddr("169.254.169.254")); r != "link-local" {
		t.Errorf("metadata address reason = %q, want link-local", r)
	}
}

func TestParseIPNumericForms(t *testing.T) {
	cases := map[string]string{
		"2130706433":       "127.0.0.1",
		"0x7f.1":           "127.0.0.1",
		"017700000001":     "127.0.0.1",
		"0x7f000001":       "127.0.0.1",
		"127.1":            "127.0.0.1",
		"127.0.1":          "127.0.0.1",
		"0177.0.0.01":      "127.0.0.1",
		"10.0x10.1":        "10.16.0.1",
		"[::1]":            "::1",
		"::ffff:127.0.0.1": "::ffff:127.0.0.1",
		"1.2.3.4":          "1.2.3.4",
	}
	for in, want := range cases {
		got, ok := ParseIP(in)
		if !ok || got.String() != want {
			t.Errorf("ParseIP(%q) = %v, %v; want %s", in, got, ok, want)
		}
	}
	for _, in := range []string{"example.com", "1.2.3.4.5", "256.1.1.1", "0x", "08", "1.2.3.256", "4294967296", "", "1..2", "+1", "0x-1", "1_000"} {
		if a, ok := ParseIP(in); ok && in != "0x" {
			t.Errorf("ParseIP(%q) = %v, want not an IP", in, a)
		}
	}
}

func TestNormalizeHost(t *testing.T) {
	cases := map[string]string{
		"Example.COM.":     "example.com",
		"bücher.example":   "xn--bcher-kva.example",
		"[::1]":            "::1",
		"2130706433":       "127.0.0.1",
		"API.github.com":   "api.github.com",
		"xn--bcher-kva.ex": "xn--bcher-kva.ex",
	}
	for in, want := range cases {
		got, err := NormalizeHost(in)
		if err != nil || got != want {
			t.Errorf("NormalizeHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", ".", "a b", "evil.com/x", "user@host", "host:80", strings.Repeat("a", 300) + ".com"} {
		if got, err := NormalizeHost(in); err == nil {
			t.Errorf("NormalizeHost(%q) = %q, want error", in, got)
		}
	}
}

type staticResolver map[string][]netip.Addr

func (r staticResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// A loopback server counts the connections it accepts, so a refusal is shown
// to happen before any connection is attempted.
func startCounter(t *testing.T) (port string, accepted func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	n := make(chan int, 1)
	n <- 0
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n <- (<-n + 1)
			c.Close()
		}
	}()
	_, port, _ = net.SplitHostPort(ln.Addr().String())
	return port, func() int { v := <-n; n <- v; return v }
}

func TestDialerRefusesInternalDestinations(t *testing.T) {
	port, accepted := startCounter(t)
	res := staticResolver{
		"rebind.test": {netip.MustParseAddr("127.0.0.1")},
		"mixed.test":  {netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("127.0.0.1")},
	}
	d := &Dialer{Resolver: res, Timeout: 2 * time.Second}
	ctx := context.Background()
	for _, host := range []string{"127.0.0.1", "2130706433", "0x7f.1", "017700000001", "[::ffff:127.0.0.1]", "rebind.test", "mixed.test", "localhost."} {
		if host == "localhost." {
			res["localhost"] = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
		}
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(strings.Trim(host, "[]"), port))
		if err == nil {
			conn.Close()
			t.Errorf("dial %s: connected, want refusal", host)
			continue
		}
		var be *BlockedError
		if !errors.As(err, &be) || !errors.Is(err, ErrBlocked) {
			t.Errorf("dial %s: err = %v, want a BlockedError", host, err)
		}
	}
	if n := accepted(); n != 0 {
		t.Fatalf("server accepted %d connections, want 0: the guard must refuse before dialling", n)
	}
	if _, err := d.DialContext(ctx, "udp", "1.1.1.1:53"); err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Errorf("udp dial: err = %v, want refusal", err)
	}

	open := &Dialer{Policy: Policy{AllowPrivateDestinations: true}, Resolver: res, Timeout: 2 * time.Second}
	conn, err := open.DialContext(ctx, "tcp", net.JoinHostPort("rebind.test", port))
	if err != nil {
		t.Fatalf("dial with private destinations allowed: %v", err)
	}
	if got := conn.RemoteAddr().(*net.TCPAddr).IP.String(); got != "127.0.0.1" {
		t.Errorf("dialled %s, want the resolved 127.0.0.1", got)
	}
	conn.Close()
	deadline := time.Now().Add(2 * time.Second)
	for accepted() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := accepted(); n != 1 {
		t.Fatalf("server accepted %d connections, want 1", n)
	}
}

func TestResolveKeepsOnlyAllowedAnswers(t *testing.T) {
	res := staticResolver{"mixed.test": {netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("93.184.216.34")}}
	d := &Dialer{Resolver: res}
	got, err := d.Resolve(context.Background(), "MIXED.test.")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].String() != "93.184.216.34" {
		t.Fatalf("Resolve = %v, want only the public answer", got)
	}
	if _, err := d.Resolve(context.Background(), "unknown.test"); err == nil || errors.Is(err, ErrBlocked) {
		t.Fatalf("unknown host: err = %v, want a resolve error", err)
	}
}

func FuzzParseIP(f *testing.F) {
	for _, s := range []string{"2130706433", "0x7f.1", "1.2.3.4", "::1", "[fe80::1%eth0]", "017700000001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, ok := ParseIP(s)
		if ok && !a.IsValid() {
			t.Fatalf("ParseIP(%q) ok with invalid address", s)
		}
		_, _ = NormalizeHost(s)
	})
}

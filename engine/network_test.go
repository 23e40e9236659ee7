package engine

import (
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/isol8/isol8/api"
)

// Filter patterns are client input: a bad one is an invalid-argument error
// when the view is made, before any sandbox exists.
func TestNetworkFilterRefused(t *testing.T) {
	h, err := NewHost(HostOptions{})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("a", 2000)
	for _, f := range []*NetworkFilter{
		{Whitelist: []string{"(unclosed"}},
		{Blacklist: []string{`^(?!x)`}},
		{Whitelist: []string{long}},
		{Whitelist: []string{"a{5000}"}},
		{Whitelist: []string{"a\x00"}},
	} {
		_, err := h.Session(api.Options{Network: NetworkFiltered, NetworkFilter: f})
		if err == nil || !errdefs.IsInvalidArgument(err) || !strings.HasPrefix(err.Error(), "Invalid network filter: ") {
			t.Errorf("filter %q/%q: %v, want an invalid-argument error", f.Whitelist, f.Blacklist, err)
		}
	}
}

// A client's view gets the operator's guard setting, never its own.
func TestNetworkSessionKeepsOperatorGuard(t *testing.T) {
	h, err := NewHost(HostOptions{AllowPrivateDestinations: false})
	if err != nil {
		t.Fatal(err)
	}
	e, err := h.Session(api.Options{Network: NetworkFiltered})
	if err != nil {
		t.Fatal(err)
	}
	if e.opts.AllowPrivateDestinations || h.proxyConfig().Guard.AllowPrivateDestinations {
		t.Fatal("a session opened the SSRF guard")
	}
}

// The environment of filtered executions: proxy variables in both cases
// after the request's env (they win), the filter as JSON, no NO_PROXY.
func TestNetworkEnv(t *testing.T) {
	e, err := New(Options{Network: NetworkFiltered, NetworkFilter: &NetworkFilter{Whitelist: []string{`^a\.com$`}}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.plan(Request{Runtime: "python", Code: "1", Env: map[string]string{"HTTP_PROXY": "http://evil:1"}})
	if err != nil {
		t.Fatal(err)
	}
	tail := p.env[len(p.env)-6:]
	want := []string{`ISOL8_WHITELIST=["^a\\.com$"]`, `ISOL8_BLACKLIST=[]`, "HTTP_PROXY=http://127.0.0.1:8118",
		"HTTPS_PROXY=http://127.0.0.1:8118", "http_proxy=http://127.0.0.1:8118", "https_proxy=http://127.0.0.1:8118"}
	if !slices.Equal(tail, want) {
		t.Fatalf("env tail %q, want %q", tail, want)
	}
	for _, kv := range p.env {
		if strings.HasPrefix(strings.ToUpper(kv), "NO_PROXY=") {
			t.Fatalf("env has %s", kv)
		}
	}
	if !slices.Contains(p.setupEnv, "https_proxy=http://127.0.0.1:8118") {
		t.Fatal("setup scripts do not get the proxy")
	}
	none, _ := New(Options{})
	p, _ = none.plan(Request{Runtime: "python", Code: "1"})
	for _, kv := range p.env {
		if strings.Contains(kv, "PROXY") || strings.Contains(kv, "proxy") {
			t.Fatalf("network none has %s", kv)
		}
	}
}

package remotecode

import (
	"reflect"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/config"
)

func bptr(b bool) *bool { return &b }

func TestFromConfigDefaults(t *testing.T) {
	p := FromConfig(config.Defaults().RemoteCode)
	if p.Enabled || !reflect.DeepEqual(p.schemes(), []string{"https"}) || len(p.BlockedHosts) != 10 ||
		p.maxCodeSize() != 10<<20 || p.fetchTimeout() != 30*time.Second || p.AllowedHosts != nil {
		t.Fatalf("%+v", p)
	}
	c := config.Defaults().RemoteCode
	c.AllowedSchemes = []string{}
	if p := FromConfig(c); p.AllowedSchemes == nil || len(p.AllowedSchemes) != 0 {
		t.Fatalf("an empty schemes list must allow nothing, got %#v", p.AllowedSchemes)
	}
}

// TestTightenNeverLoosens: whatever a client sends, the effective policy
// allows no more than the server's.
func TestTightenNeverLoosens(t *testing.T) {
	server := Policy{
		Enabled:        true,
		AllowedSchemes: []string{"https"},
		AllowedHosts:   [][]string{{`^raw\.githubusercontent\.com$`, `^example\.com$`}},
		BlockedHosts:   []string{`^localhost$`},
		MaxCodeSize:    1000,
		FetchTimeout:   5 * time.Second,
	}
	cases := []struct {
		name   string
		client *api.RemoteCodePolicy
		check  func(t *testing.T, p Policy)
	}{
		{"nil keeps the server's", nil, func(t *testing.T, p Policy) {
			if !reflect.DeepEqual(p, server) {
				t.Fatalf("%+v", p)
			}
		}},
		{"cannot enable", &api.RemoteCodePolicy{Enabled: bptr(true)}, func(t *testing.T, p Policy) {
			q, _ := Tighten(Policy{}, &api.RemoteCodePolicy{Enabled: bptr(true)})
			if q.Enabled {
				t.Fatal("client enabled a disabled server policy")
			}
		}},
		{"can disable", &api.RemoteCodePolicy{Enabled: bptr(false)}, func(t *testing.T, p Policy) {
			if p.Enabled {
				t.Fatal("still enabled")
			}
		}},
		{"cannot add http", &api.RemoteCodePolicy{AllowedSchemes: []string{"http", "HTTPS"}}, func(t *testing.T, p Policy) {
			if !reflect.DeepEqual(p.AllowedSchemes, []string{"https"}) {
				t.Fatalf("%v", p.AllowedSchemes)
			}
		}},
		{"disjoint schemes allow nothing", &api.RemoteCodePolicy{AllowedSchemes: []string{"http"}}, func(t *testing.T, p Policy) {
			if p.AllowedSchemes == nil || len(p.AllowedSchemes) != 0 {
				t.Fatalf("%#v", p.AllowedSchemes)
			}
		}},
		{"hosts narrow", &api.RemoteCodePolicy{AllowedHosts: []string{`.*`}}, func(t *testing.T, p Policy) {
			r, err := p.rules()
			if err != nil {
				t.Fatal(err)
			}
			if r.allows("evil.com") || !r.allows("example.com") {
				t.Fatal("a client's allowedHosts widened the server's")
			}
		}},
		{"cannot drop blocked hosts", &api.RemoteCodePolicy{BlockedHosts: []string{`^evil\.com$`}}, func(t *testing.T, p Policy) {
			r, _ := p.rules()
			if r.allows("localhost") || r.allows("evil.com") {
				t.Fatal("blocked host allowed")
			}
		}},
		{"size and timeout only lower", &api.RemoteCodePolicy{MaxCodeSize: 1 << 30, FetchTimeoutMs: 600000}, func(t *testing.T, p Policy) {
			if p.MaxCodeSize != 1000 || p.FetchTimeout != 5*time.Second {
				t.Fatalf("%d %s", p.MaxCodeSize, p.FetchTimeout)
			}
		}},
		{"size and timeout lowered", &api.RemoteCodePolicy{MaxCodeSize: 10, FetchTimeoutMs: 100}, func(t *testing.T, p Policy) {
			if p.MaxCodeSize != 10 || p.FetchTimeout != 100*time.Millisecond {
				t.Fatalf("%d %s", p.MaxCodeSize, p.FetchTimeout)
			}
		}},
		{"requireHash sticks", &api.RemoteCodePolicy{RequireHash: true}, func(t *testing.T, p Policy) {
			if !p.RequireHash {
				t.Fatal("requireHash dropped")
			}
			q, _ := Tighten(Policy{Enabled: true, RequireHash: true}, &api.RemoteCodePolicy{})
			if !q.RequireHash {
				t.Fatal("client cleared the server's requireHash")
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Tighten(server, c.client)
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, p)
		})
	}
	// The server's value is not modified through shared slices.
	before := len(server.BlockedHosts)
	_, _ = Tighten(server, &api.RemoteCodePolicy{BlockedHosts: []string{"x"}})
	if len(server.BlockedHosts) != before || len(server.AllowedHosts) != 1 {
		t.Fatal("Tighten modified the server policy")
	}
}

func TestTightenRejectsBadClientPatterns(t *testing.T) {
	long := make([]string, 65)
	for i := range long {
		long[i] = "a"
	}
	for name, c := range map[string]*api.RemoteCodePolicy{
		"bad regexp":  {AllowedHosts: []string{"("}},
		"bad blocked": {BlockedHosts: []string{"[z-a]"}},
		"too many":    {BlockedHosts: long},
		"too long":    {AllowedHosts: []string{string(make([]byte, 2000))}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Tighten(Policy{Enabled: true}, c)
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("%v", err)
			}
		})
	}
}

func TestHostRules(t *testing.T) {
	r, err := Policy{BlockedHosts: config.DefaultBlockedHosts()}.rules()
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]bool{
		"localhost": false, "127.0.0.1": false, "::1": false, "10.0.0.1": false, "172.16.3.4": false,
		"192.168.1.1": false, "169.254.169.254": false, "metadata.google.internal": false,
		"example.com": true, "172.32.0.1": true, "raw.githubusercontent.com": true,
	} {
		if got := r.allows(host); got != want {
			t.Errorf("%s: allowed=%t, want %t", host, got, want)
		}
	}
}

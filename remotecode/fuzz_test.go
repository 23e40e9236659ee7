package remotecode

import (
	"strings"
	"testing"
	"time"

	"github.com/isol8/isol8/api"
)

// permits is what p lets through for one scheme and host.
func permits(p Policy, scheme, host string) bool {
	if !p.Enabled || !containsFold(p.schemes(), scheme) {
		return false
	}
	r, err := p.rules()
	return err == nil && r.allows(host)
}

// FuzzTightenNeverLoosens: whatever a client sends, every URL the
// effective policy permits, the server's permits too, and no limit grows.
func FuzzTightenNeverLoosens(f *testing.F) {
	f.Add(true, "http,https", ".*", "", int64(0), int64(0), false)
	f.Add(false, "", "", "^a", int64(1<<40), int64(1<<40), true)
	f.Add(true, "HTTPS,ftp,file", `^(raw|evil)\.`, `x`, int64(5), int64(1), false)
	server := Policy{
		Enabled:        true,
		AllowedSchemes: []string{"https"},
		AllowedHosts:   [][]string{{`^raw\.githubusercontent\.com$`, `\.example\.com$`}},
		BlockedHosts:   []string{`^internal\.example\.com$`},
		MaxCodeSize:    1 << 20,
		FetchTimeout:   10 * time.Second,
	}
	hosts := []string{"raw.githubusercontent.com", "a.example.com", "internal.example.com", "evil.com", "localhost", "127.0.0.1", "::1"}
	schemes := []string{"http", "https", "HTTPS", "ftp", "file"}
	f.Fuzz(func(t *testing.T, enabled bool, schemeList, allowed, blocked string, maxSize, timeoutMs int64, requireHash bool) {
		c := &api.RemoteCodePolicy{Enabled: &enabled, MaxCodeSize: maxSize, FetchTimeoutMs: timeoutMs, RequireHash: requireHash}
		if schemeList != "" {
			c.AllowedSchemes = strings.Split(schemeList, ",")
		}
		if allowed != "" {
			c.AllowedHosts = []string{allowed}
		}
		if blocked != "" {
			c.BlockedHosts = []string{blocked}
		}
		eff, err := Tighten(server, c)
		if err != nil {
			return // refused client input loosens nothing
		}
		for _, s := range schemes {
			for _, h := range hosts {
				if permits(eff, strings.ToLower(s), h) && !permits(server, strings.ToLower(s), h) {
					t.Fatalf("client %+v widened the policy: %s://%s", c, s, h)
				}
			}
		}
		if eff.maxCodeSize() > server.maxCodeSize() || eff.fetchTimeout() > server.fetchTimeout() ||
			(server.RequireHash && !eff.RequireHash) || eff.maxRedirects() != server.maxRedirects() {
			t.Fatalf("client %+v raised a limit: %+v", c, eff)
		}
	})
}

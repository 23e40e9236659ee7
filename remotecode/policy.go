// Package remotecode fetches the source code of an execution from a URL
// (codeUrl, `isol8 run --url/--github/--gist`) on the host, under the
// operator's policy: allowed schemes, host patterns, a size cap enforced
// while reading, a timeout, an optional SHA-256 check, and the SSRF guard of
// package netguard on every address it dials, redirects included. It runs
// nothing: a caller executes the returned text only after Fetch succeeded,
// so a refused or mismatching fetch runs nothing.
package remotecode

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/config"
)

// Defaults for zero Policy fields.
const (
	DefaultMaxCodeSize  = 10 << 20
	DefaultFetchTimeout = 30 * time.Second
	// DefaultMaxRedirects bounds the redirects one fetch follows.
	DefaultMaxRedirects = 5
)

// Limits on what a client's policy may carry.
const (
	maxClientPatterns  = 64
	maxClientPatternSz = 1024
)

// Policy is an effective remote-code policy. The zero value is disabled
// (the library default). Zero numeric fields mean the Default* values; a
// nil AllowedSchemes means ["https"], an empty non-nil one allows nothing.
type Policy struct {
	Enabled bool
	// AllowedSchemes are compared case-insensitively; only http and https
	// are ever fetched, whatever the list says.
	AllowedSchemes []string
	// AllowedHosts holds groups of host patterns: the host must match at
	// least one pattern of every non-empty group. The operator's list is one
	// group; a client's list adds another, so a client can only narrow.
	AllowedHosts [][]string
	// BlockedHosts: a host matching any of them is refused.
	BlockedHosts []string
	MaxCodeSize  int64
	FetchTimeout time.Duration
	RequireHash  bool
	// MaxRedirects bounds redirects (0: DefaultMaxRedirects; negative:
	// none are followed).
	MaxRedirects int
}

// FromConfig turns the config file's remoteCode section into a policy.
func FromConfig(c config.RemoteCode) Policy {
	p := Policy{
		Enabled:        c.Enabled,
		AllowedSchemes: append([]string{}, c.AllowedSchemes...),
		BlockedHosts:   append([]string(nil), c.BlockedHosts...),
		MaxCodeSize:    c.MaxCodeSize,
		FetchTimeout:   time.Duration(c.FetchTimeoutMs) * time.Millisecond,
		RequireHash:    c.RequireHash,
	}
	if c.AllowedSchemes == nil {
		p.AllowedSchemes = nil
	}
	if len(c.AllowedHosts) > 0 {
		p.AllowedHosts = [][]string{append([]string(nil), c.AllowedHosts...)}
	}
	return p
}

// maxCodeSize and the other getters apply the defaults of zero fields.
func (p Policy) maxCodeSize() int64 {
	if p.MaxCodeSize <= 0 {
		return DefaultMaxCodeSize
	}
	return p.MaxCodeSize
}

func (p Policy) fetchTimeout() time.Duration {
	if p.FetchTimeout <= 0 {
		return DefaultFetchTimeout
	}
	return p.FetchTimeout
}

func (p Policy) maxRedirects() int {
	switch {
	case p.MaxRedirects == 0:
		return DefaultMaxRedirects
	case p.MaxRedirects < 0:
		return 0
	}
	return p.MaxRedirects
}

func (p Policy) schemes() []string {
	if p.AllowedSchemes == nil {
		return []string{"https"}
	}
	return p.AllowedSchemes
}

// Tighten returns the policy a request runs under when a server with policy
// server receives a client's remoteCode options: the client can switch
// remote code off, narrow the schemes and hosts, add blocked hosts, lower
// the size cap and the timeout and require a hash; nothing it sends widens
// what the server allows. A nil client keeps the server's policy. Invalid
// client patterns are an invalid-argument error.
func Tighten(server Policy, client *api.RemoteCodePolicy) (Policy, error) {
	p := server
	p.AllowedSchemes = slices.Clone(server.AllowedSchemes)
	p.AllowedHosts = slices.Clone(server.AllowedHosts)
	p.BlockedHosts = slices.Clone(server.BlockedHosts)
	if client == nil {
		return p, nil
	}
	for _, list := range [][]string{client.AllowedHosts, client.BlockedHosts} {
		if err := validClientPatterns(list); err != nil {
			return Policy{}, err
		}
	}
	if client.Enabled != nil && !*client.Enabled {
		p.Enabled = false
	}
	if client.AllowedSchemes != nil {
		keep := []string{}
		for _, s := range server.schemes() {
			if containsFold(client.AllowedSchemes, s) {
				keep = append(keep, s)
			}
		}
		p.AllowedSchemes = keep
	}
	if len(client.AllowedHosts) > 0 {
		p.AllowedHosts = append(p.AllowedHosts, slices.Clone(client.AllowedHosts))
	}
	p.BlockedHosts = append(p.BlockedHosts, client.BlockedHosts...)
	if client.MaxCodeSize > 0 && client.MaxCodeSize < server.maxCodeSize() {
		p.MaxCodeSize = client.MaxCodeSize
	}
	if ms := client.FetchTimeoutMs; ms > 0 && ms < server.fetchTimeout().Milliseconds() {
		p.FetchTimeout = time.Duration(ms) * time.Millisecond
	}
	p.RequireHash = server.RequireHash || client.RequireHash
	return p, nil
}

func validClientPatterns(list []string) error {
	if len(list) > maxClientPatterns {
		return api.InvalidArgumentf("remoteCode: at most %d host patterns are accepted (got %d)", maxClientPatterns, len(list))
	}
	for _, s := range list {
		if len(s) > maxClientPatternSz {
			return api.InvalidArgumentf("remoteCode: host pattern longer than %d bytes", maxClientPatternSz)
		}
		if _, err := compile(s); err != nil {
			return api.InvalidArgumentf("remoteCode: invalid host pattern %q: %v", s, err)
		}
	}
	return nil
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(strings.TrimSpace(v), s) {
			return true
		}
	}
	return false
}

// compile reads a host pattern the way the reference does: an unanchored,
// case-insensitive regular expression.
func compile(pattern string) (*regexp.Regexp, error) {
	return regexp.Compile("(?i)" + pattern)
}

// hostRules are a policy's compiled host patterns.
type hostRules struct {
	allowed [][]*regexp.Regexp
	blocked []*regexp.Regexp
}

func (p Policy) rules() (*hostRules, error) {
	r := &hostRules{}
	for _, group := range p.AllowedHosts {
		var g []*regexp.Regexp
		for _, s := range group {
			re, err := compile(s)
			if err != nil {
				return nil, api.InvalidArgumentf("remoteCode.allowedHosts: invalid pattern %q: %v", s, err)
			}
			g = append(g, re)
		}
		if len(g) > 0 {
			r.allowed = append(r.allowed, g)
		}
	}
	for _, s := range p.BlockedHosts {
		re, err := compile(s)
		if err != nil {
			return nil, api.InvalidArgumentf("remoteCode.blockedHosts: invalid pattern %q: %v", s, err)
		}
		r.blocked = append(r.blocked, re)
	}
	return r, nil
}

// allows reports whether host (normalised: lower case, IPv6 without
// brackets) passes the patterns. An IPv6 host is matched both bare and in
// brackets, the form a URL's host takes, so either style of pattern works.
func (r *hostRules) allows(host string) bool {
	forms := []string{host}
	if strings.Contains(host, ":") {
		forms = append(forms, "["+host+"]")
	}
	match := func(re *regexp.Regexp) bool {
		for _, f := range forms {
			if re.MatchString(f) {
				return true
			}
		}
		return false
	}
	for _, re := range r.blocked {
		if match(re) {
			return false
		}
	}
	for _, group := range r.allowed {
		if !slices.ContainsFunc(group, match) {
			return false
		}
	}
	return true
}

// String describes the policy for logs and audit records.
func (p Policy) String() string {
	return fmt.Sprintf("enabled=%t schemes=%v allowedHosts=%v blockedHosts=%d maxCodeSize=%d timeout=%s requireHash=%t",
		p.Enabled, p.schemes(), p.AllowedHosts, len(p.BlockedHosts), p.maxCodeSize(), p.fetchTimeout(), p.RequireHash)
}

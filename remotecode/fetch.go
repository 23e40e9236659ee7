package remotecode

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/netguard"
)

// User-facing refusal texts (kept word for word from the reference).
const (
	TextDisabled     = "Remote code fetching is disabled. Set remoteCode.enabled=true to allow it."
	TextInsecure     = "Insecure code URL blocked. Use allowInsecureCodeUrl=true to allow HTTP."
	TextHashRequired = "Hash verification required: provide codeHash for remote code execution."
	TextEmptyBody    = "Remote code response body is empty"
	TextBinary       = "Fetched code appears to be binary content"
	// TextHashMismatch starts the error of a hash mismatch; the expected
	// and the received hashes follow.
	TextHashMismatch = "Remote code hash mismatch"
)

// Source is what a request asks to fetch.
type Source struct {
	URL string
	// Hash is the expected SHA-256 (hex, any case); empty: not checked
	// unless the policy requires it.
	Hash string
	// AllowInsecure permits http:// (the scheme must also be allowed by
	// the policy).
	AllowInsecure bool
}

// Code is fetched source code that passed every check.
type Code struct {
	Text string
	// SHA256 is the hex SHA-256 of Text.
	SHA256 string
	// URL is the URL asked for; FinalURL the one the code came from after
	// redirects.
	URL, FinalURL string
}

// Fetcher fetches remote code. The zero value refuses private, loopback,
// link-local and metadata destinations and uses the system resolver.
type Fetcher struct {
	// AllowPrivateDestinations opens the guard for internal addresses
	// (operator setting network.allowPrivateDestinations; tests on
	// loopback).
	AllowPrivateDestinations bool
	// Resolver replaces the system resolver (nil: net.DefaultResolver).
	Resolver netguard.Resolver
	// remap, set only by this package's tests, changes the address a
	// connection goes to after the guard approved it, so a test can stand
	// a loopback server in for a public address.
	remap func(netip.AddrPort) netip.AddrPort
}

// policyError is a refusal found while checking a URL (the first one or a
// redirect target); it is returned as is.
type policyError struct{ err error }

func (e *policyError) Error() string { return e.err.Error() }
func (e *policyError) Unwrap() error { return e.err }

// resolveError is a failed name lookup of host.
type resolveError struct {
	host string
	err  error
}

func (e *resolveError) Error() string { return fmt.Sprintf("resolve %s: %v", e.host, e.err) }
func (e *resolveError) Unwrap() error { return e.err }

// Fetch checks src against p, downloads the code and verifies it. Checks,
// in order: the policy is enabled; the URL parses; http needs
// AllowInsecure; the scheme is allowed; the host passes the patterns; its
// addresses pass the guard; a required hash is present. Then GET, each
// redirect hop checked again (scheme, patterns, guard on the dialled
// address), at most MaxRedirects hops, within FetchTimeout; the body is cut
// off once it passes MaxCodeSize; it must be non-empty UTF-8 text without
// NUL; its SHA-256 must equal src.Hash when given.
func (f *Fetcher) Fetch(ctx context.Context, p Policy, src Source) (*Code, error) {
	if !p.Enabled {
		return nil, api.InvalidArgumentf("%s", TextDisabled)
	}
	rules, err := p.rules()
	if err != nil {
		return nil, err
	}
	u, err := parseURL(src.URL)
	if err != nil {
		return nil, err
	}
	if err := checkURL(u, p, rules, src.AllowInsecure); err != nil {
		return nil, err
	}
	want := strings.ToLower(strings.TrimSpace(src.Hash))
	if want != "" && !isSHA256(want) {
		return nil, api.InvalidArgumentf("Invalid codeHash %q: expected 64 hexadecimal characters (SHA-256)", src.Hash)
	}
	ctx, cancel := context.WithTimeout(ctx, p.fetchTimeout())
	defer cancel()
	// The guard runs again on the address each connection dials; this
	// first look gives the user the refusal before any request is made.
	if _, err := f.dialer().Resolve(ctx, u.Hostname()); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, api.Deadline(fmt.Errorf("Remote code fetch timed out after %dms", p.fetchTimeout().Milliseconds()))
		}
		return nil, hostError(u.Hostname(), err)
	}
	if p.RequireHash && want == "" {
		return nil, api.InvalidArgumentf("%s", TextHashRequired)
	}
	text, final, err := f.get(ctx, u, p, rules, src.AllowInsecure)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(text))
	got := hex.EncodeToString(sum[:])
	if want != "" && got != want {
		return nil, api.InvalidArgumentf("%s: expected %s, got %s", TextHashMismatch, want, got)
	}
	return &Code{Text: text, SHA256: got, URL: u.String(), FinalURL: final}, nil
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func parseURL(raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Hostname() == "" {
		return nil, api.InvalidArgumentf("Invalid code URL: %q", raw)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	return u, nil
}

// checkURL applies the scheme and host-pattern rules to one URL (the first
// one or a redirect target).
func checkURL(u *url.URL, p Policy, rules *hostRules, allowInsecure bool) error {
	scheme := strings.ToLower(u.Scheme)
	if scheme == "http" && !allowInsecure {
		return api.InvalidArgumentf("%s", TextInsecure)
	}
	if (scheme != "http" && scheme != "https") || !containsFold(p.schemes(), scheme) {
		return api.InvalidArgumentf("URL scheme not allowed: %s", scheme)
	}
	host, err := netguard.NormalizeHost(u.Hostname())
	if err != nil || !rules.allows(host) {
		return api.InvalidArgumentf("Blocked code URL host: %s", strings.ToLower(u.Hostname()))
	}
	return nil
}

// hostError words a guard or lookup failure for host.
func hostError(host string, err error) error {
	host = strings.ToLower(host)
	var re *resolveError
	switch {
	case errors.Is(err, netguard.ErrBlocked):
		return api.InvalidArgumentf("Blocked code URL host: %s", host)
	case errors.As(err, &re):
		return api.Unavailable(fmt.Errorf("Failed to resolve code URL host: %s", re.host))
	}
	return api.Unavailable(fmt.Errorf("Failed to resolve code URL host: %s", host))
}

func (f *Fetcher) dialer() *netguard.Dialer {
	return &netguard.Dialer{
		Policy:   netguard.Policy{AllowPrivateDestinations: f.AllowPrivateDestinations},
		Resolver: f.Resolver,
	}
}

// dial is the transport's only way out: it resolves once through the guard
// and connects to an approved address, so every hop (redirects too) is
// checked on the address actually dialled.
func (f *Fetcher) dial(ctx context.Context, network, address string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("dial %s: bad port", address)
	}
	addrs, err := f.dialer().Resolve(ctx, host)
	if err != nil {
		if errors.Is(err, netguard.ErrBlocked) {
			return nil, err
		}
		return nil, &resolveError{host: host, err: err}
	}
	nd := net.Dialer{Timeout: 10 * time.Second}
	var lastErr error
	for _, a := range addrs {
		target := netip.AddrPortFrom(a, uint16(port))
		if f.remap != nil {
			target = f.remap(target)
		}
		conn, err := nd.DialContext(ctx, "tcp", target.String())
		if err == nil {
			return conn, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

// get downloads u and returns the text and the final URL.
func (f *Fetcher) get(ctx context.Context, u *url.URL, p Policy, rules *hostRules, allowInsecure bool) (string, string, error) {
	maxHops := p.maxRedirects()
	client := &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil, // an environment proxy would bypass the guard
			DialContext:            f.dial,
			ForceAttemptHTTP2:      true,
			DisableKeepAlives:      true,
			TLSHandshakeTimeout:    10 * time.Second,
			MaxResponseHeaderBytes: 64 << 10,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > maxHops {
				return &policyError{api.InvalidArgumentf("Failed to fetch remote code: more than %d redirects", maxHops)}
			}
			if err := checkURL(req.URL, p, rules, allowInsecure); err != nil {
				return &policyError{err}
			}
			return nil
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", "", api.InvalidArgumentf("Invalid code URL: %q", u.String())
	}
	req.Header.Set("User-Agent", "isol8/"+api.Version)
	resp, err := client.Do(req)
	if err != nil {
		return "", "", f.fetchError(ctx, p, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", "", api.Unavailable(fmt.Errorf("Failed to fetch remote code: HTTP %d", resp.StatusCode))
	}
	limit := p.maxCodeSize()
	if resp.ContentLength > limit {
		return "", "", api.InvalidArgumentf("Remote code exceeds maxCodeSize (%d bytes): %d bytes", limit, resp.ContentLength)
	}
	// The cap holds while reading: at most limit+1 bytes are ever read,
	// whatever the server claims or sends.
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return "", "", f.fetchError(ctx, p, err)
	}
	if int64(len(body)) > limit {
		return "", "", api.InvalidArgumentf("Remote code exceeds maxCodeSize (%d bytes)", limit)
	}
	switch {
	case len(body) == 0:
		return "", "", api.InvalidArgumentf("%s", TextEmptyBody)
	case !utf8.Valid(body):
		return "", "", api.InvalidArgumentf("Fetched code is not valid UTF-8")
	case strings.IndexByte(string(body), 0) >= 0:
		return "", "", api.InvalidArgumentf("%s", TextBinary)
	}
	return string(body), resp.Request.URL.String(), nil
}

// fetchError words a transport failure.
func (f *Fetcher) fetchError(ctx context.Context, p Policy, err error) error {
	var pe *policyError
	if errors.As(err, &pe) {
		return pe.err
	}
	if errors.Is(err, netguard.ErrBlocked) || errors.As(err, new(*resolveError)) {
		var be *netguard.BlockedError
		host := ""
		if errors.As(err, &be) {
			host = be.Host
		}
		var re *resolveError
		if errors.As(err, &re) {
			host = re.host
		}
		return hostError(host, err)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return api.Deadline(fmt.Errorf("Remote code fetch timed out after %dms", p.fetchTimeout().Milliseconds()))
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return api.Unavailable(fmt.Errorf("Failed to fetch remote code: %v", err))
}

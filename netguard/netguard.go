// Package netguard decides which network destinations sandbox traffic may
// reach when it leaves through the host: the filtered-network proxy and the
// host-side fetch of remote code both dial through it.
//
// The guard works on the IP address that is actually dialled. A host name is
// resolved once, every answer is checked, and the connection goes to a checked
// address, so a DNS answer that changes between the check and the dial (DNS
// rebinding) cannot steer a connection to an internal service.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/idna"
)

// ErrBlocked is matched (errors.Is) by every refusal of the guard.
var ErrBlocked = errors.New("destination not allowed")

// BlockedError says which destination was refused and why.
type BlockedError struct {
	Host   string     // the name or literal the caller asked for
	Addr   netip.Addr // the address that was refused
	Reason string     // "loopback", "private", "link-local", ...
}

func (e *BlockedError) Error() string {
	if e.Host != "" && e.Host != e.Addr.String() {
		return fmt.Sprintf("destination %s (%s) is not allowed: %s address", e.Host, e.Addr, e.Reason)
	}
	return fmt.Sprintf("destination %s is not allowed: %s address", e.Addr, e.Reason)
}

// Is makes errors.Is(err, ErrBlocked) true.
func (e *BlockedError) Is(target error) bool { return target == ErrBlocked }

// Special-purpose ranges that net/netip has no predicate for. Each is either
// internal to some network or not routable on the internet, so a sandbox has
// no business reaching it.
var specialPrefixes = []struct {
	prefix netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},
}

// Prefixes whose addresses embed an IPv4 address that a translator or tunnel
// on the path would deliver to: the embedded address decides.
var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
)

// Classify returns why addr must not be reached from a sandbox, or "" for a
// public unicast address.
func Classify(addr netip.Addr) string {
	if !addr.IsValid() {
		return "invalid"
	}
	addr = addr.WithZone("")
	if addr.Is4In6() {
		addr = addr.Unmap()
	}
	if addr.Is6() {
		b := addr.As16()
		switch {
		case nat64Prefix.Contains(addr):
			if r := Classify(netip.AddrFrom4([4]byte(b[12:16]))); r != "" {
				return r + " (NAT64)"
			}
		case sixToFour.Contains(addr):
			if r := Classify(netip.AddrFrom4([4]byte(b[2:6]))); r != "" {
				return r + " (6to4)"
			}
		case [12]byte(b[:12]) == [12]byte{}:
			// ::/96 is the deprecated IPv4-compatible form; ::1 and :: are
			// caught below, anything else there is no real destination.
			if !addr.IsLoopback() && !addr.IsUnspecified() {
				return "IPv4-compatible"
			}
		}
	}
	switch {
	case addr.IsUnspecified():
		return "unspecified"
	case addr.IsLoopback():
		return "loopback"
	case addr.IsLinkLocalUnicast(), addr.IsLinkLocalMulticast():
		return "link-local"
	case addr.IsMulticast(), addr.IsInterfaceLocalMulticast():
		return "multicast"
	case addr.IsPrivate():
		return "private"
	case addr == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "broadcast"
	}
	for _, s := range specialPrefixes {
		if s.prefix.Contains(addr) {
			return s.reason
		}
	}
	return ""
}

// Policy is what the operator allows.
type Policy struct {
	// AllowPrivateDestinations opens the guard for loopback, private,
	// link-local and the other internal ranges: for internal services and for
	// tests that serve on loopback.
	AllowPrivateDestinations bool
}

// Check returns a *BlockedError when the policy refuses addr.
func (p Policy) Check(host string, addr netip.Addr) error {
	if !addr.IsValid() {
		return &BlockedError{Host: host, Addr: addr, Reason: "invalid"}
	}
	if p.AllowPrivateDestinations {
		return nil
	}
	if r := Classify(addr); r != "" {
		return &BlockedError{Host: host, Addr: addr.WithZone(""), Reason: r}
	}
	return nil
}

// ParseIP reads host as an IP literal the way programs inside a sandbox would:
// IPv6 with or without brackets, and IPv4 in every form the C library's
// inet_aton accepts (2130706433, 0x7f.1, 017700000001, 127.1). A guard that
// only knew dotted quads would treat those as names and let them through.
func ParseIP(host string) (netip.Addr, bool) {
	h := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if a, err := netip.ParseAddr(h); err == nil {
		return a, true
	}
	return parseInetAton(host)
}

func parseInetAton(s string) (netip.Addr, bool) {
	if s == "" || len(s) > 64 {
		return netip.Addr{}, false
	}
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		v, ok := parseAtonPart(p)
		if !ok {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	// Every part but the last is one byte; the last fills the rest.
	var out uint64
	for _, v := range vals[:len(vals)-1] {
		if v > 0xff {
			return netip.Addr{}, false
		}
		out = out<<8 | v
	}
	restBits := uint(8 * (5 - len(vals)))
	last := vals[len(vals)-1]
	if last >= 1<<restBits {
		return netip.Addr{}, false
	}
	out = out<<restBits | last
	return netip.AddrFrom4([4]byte{byte(out >> 24), byte(out >> 16), byte(out >> 8), byte(out)}), true
}

func parseAtonPart(p string) (uint64, bool) {
	if p == "" {
		return 0, false
	}
	base, digits := 10, p
	switch {
	case len(p) > 1 && (p[:2] == "0x" || p[:2] == "0X"):
		base, digits = 16, p[2:]
		if digits == "" {
			return 0, true // inet_aton reads a bare "0x" as zero
		}
	case len(p) > 1 && p[0] == '0':
		base, digits = 8, p[1:]
	}
	for _, c := range digits {
		if c == '+' || c == '-' || c == '_' {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(digits, base, 32)
	if err != nil {
		return 0, false
	}
	return v, true
}

// NormalizeHost returns the form of a host name that rules are matched
// against: lower case, IDNA (punycode) for international names, no trailing
// dot, IPv6 without brackets or zone. It takes a host without a port.
func NormalizeHost(host string) (string, error) {
	h := strings.TrimSuffix(host, ".")
	if h == "" {
		return "", fmt.Errorf("empty host name")
	}
	if a, ok := ParseIP(h); ok {
		return a.WithZone("").String(), nil
	}
	if strings.ContainsAny(h, "[]/\\@ \t\r\n%:") {
		return "", fmt.Errorf("invalid host name %q", host)
	}
	ascii, err := hostProfile.ToASCII(h)
	if err != nil {
		return "", fmt.Errorf("invalid host name %q: %w", host, err)
	}
	return strings.ToLower(ascii), nil
}

// hostProfile is IDNA's lookup profile plus the DNS length limits. Strict
// host-name rules stay off so names with an underscore, which resolvers
// accept, can still be matched; the characters that could change how a URL
// or a rule is read are refused above.
var hostProfile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.VerifyDNSLength(true), idna.StrictDomainName(false))

// Resolver looks up a host name; *net.Resolver satisfies it. Tests and the
// proxy's own DNS settings plug in here.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Dialer opens TCP connections to destinations the policy allows.
type Dialer struct {
	Policy   Policy
	Resolver Resolver      // nil: net.DefaultResolver
	Timeout  time.Duration // connect timeout per attempt; 0: 10s
}

// Resolve returns the addresses of host that the policy allows, in the
// resolver's order. An IP literal (in any inet_aton form) is not looked up.
// When every answer is refused, the error is the first refusal.
func (d *Dialer) Resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	name, err := NormalizeHost(host)
	if err != nil {
		return nil, err
	}
	if a, ok := ParseIP(name); ok {
		if err := d.Policy.Check(host, a); err != nil {
			return nil, err
		}
		return []netip.Addr{a.WithZone("")}, nil
	}
	r := d.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", name)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", name, err)
	}
	var allowed []netip.Addr
	var firstRefusal error
	for _, a := range addrs {
		if err := d.Policy.Check(host, a); err != nil {
			if firstRefusal == nil {
				firstRefusal = err
			}
			continue
		}
		allowed = append(allowed, a.Unmap())
	}
	if len(allowed) == 0 {
		if firstRefusal != nil {
			return nil, firstRefusal
		}
		return nil, fmt.Errorf("resolve %s: no addresses", name)
	}
	return allowed, nil
}

// DialContext resolves address ("host:port") once, checks the answers and
// connects to the first allowed address that accepts. Only TCP is offered.
// It has the signature of net.Dialer.DialContext, so it drops into
// http.Transport.DialContext.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("dial %s: network %q is not allowed", address, network)
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", address, err)
	}
	addrs, err := d.Resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	nd := net.Dialer{Timeout: timeout}
	var lastErr error
	for _, a := range addrs {
		if (network == "tcp4" && !a.Is4()) || (network == "tcp6" && !a.Is6()) {
			continue
		}
		conn, err := nd.DialContext(ctx, "tcp", net.JoinHostPort(a.String(), port))
		if err == nil {
			return conn, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("no %s address for %s", network, host)
	}
	return nil, fmt.Errorf("dial %s: %w", address, lastErr)
}

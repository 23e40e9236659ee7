package proxy

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/isol8/isol8/api"
)

// Limits on the patterns of one filter. Patterns come from clients: Go's
// regular expressions run in time linear in the input, and these bounds
// keep compiling them and matching a host cheap.
const (
	MaxPatterns      = 256
	MaxPatternLength = 1024
)

// Rules are compiled allow and deny patterns. They match the normalised
// host name (lower case, IDNA, no trailing dot, no port) anywhere in it
// (unanchored, as the reference's grep -E did) and regardless of case.
// A deny match wins; an empty allow list allows every host the deny list
// does not match.
type Rules struct {
	allow, deny       []*regexp.Regexp
	allowSrc, denySrc []string
}

// Compile checks and compiles allow and deny patterns. A bad pattern is an
// invalid-argument error naming the list and the pattern.
func Compile(allow, deny []string) (*Rules, error) {
	r := &Rules{allowSrc: append([]string(nil), allow...), denySrc: append([]string(nil), deny...)}
	var err error
	if r.allow, err = compileList("whitelist", allow); err != nil {
		return nil, err
	}
	if r.deny, err = compileList("blacklist", deny); err != nil {
		return nil, err
	}
	return r, nil
}

func compileList(name string, list []string) ([]*regexp.Regexp, error) {
	if len(list) > MaxPatterns {
		return nil, api.InvalidArgumentf("Invalid network filter: %s has %d patterns, more than the limit of %d", name, len(list), MaxPatterns)
	}
	out := make([]*regexp.Regexp, 0, len(list))
	for i, p := range list {
		if len(p) > MaxPatternLength {
			return nil, api.InvalidArgumentf("Invalid network filter: %s[%d] is %d bytes long, more than the limit of %d", name, i, len(p), MaxPatternLength)
		}
		if strings.ContainsRune(p, 0) {
			return nil, api.InvalidArgumentf("Invalid network filter: %s[%d] contains a NUL byte", name, i)
		}
		re, err := regexp.Compile("(?i:" + p + ")")
		if err != nil {
			// Report the error on the pattern as given, not the wrapped one.
			if _, err2 := regexp.Compile(p); err2 != nil {
				err = err2
			}
			return nil, api.InvalidArgumentf("Invalid network filter: %s[%d]: invalid pattern %q: %s", name, i, p,
				strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
		out = append(out, re)
	}
	return out, nil
}

// Decision is what the rules say about one host.
type Decision struct {
	Allowed bool
	// Rule names what decided: "blacklist:<pattern>", "whitelist:<pattern>",
	// "no whitelist match" or "no whitelist" (every host allowed).
	Rule string
}

// Decide applies the rules to a normalised host.
func (r *Rules) Decide(host string) Decision {
	if r == nil {
		return Decision{Allowed: true, Rule: "no whitelist"}
	}
	for i, re := range r.deny {
		if re.MatchString(host) {
			return Decision{Rule: "blacklist:" + r.denySrc[i]}
		}
	}
	if len(r.allow) == 0 {
		return Decision{Allowed: true, Rule: "no whitelist"}
	}
	for i, re := range r.allow {
		if re.MatchString(host) {
			return Decision{Allowed: true, Rule: "whitelist:" + r.allowSrc[i]}
		}
	}
	return Decision{Rule: "no whitelist match"}
}

// String describes the rules for logs.
func (r *Rules) String() string {
	if r == nil {
		return "allow all"
	}
	return fmt.Sprintf("whitelist %q blacklist %q", r.allowSrc, r.denySrc)
}

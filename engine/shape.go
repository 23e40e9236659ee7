package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isol8/isol8/seccomp"
)

// shape is everything a view's options change in a sandbox's runtime spec.
// Sandboxes of one shape are interchangeable between views (secrets,
// timeouts and output caps travel with each request, not in the sandbox),
// so the host pools them by shape: views with the same shape share warm
// sandboxes, views with another shape never get one of them.
type shape struct {
	limits   limits
	cpu      float64
	pids     int64
	readonly bool
	network  string
	seccomp  string
	profile  *specs.LinuxSeccomp
	// verdict is the profile's validation, shared by every sandbox of the
	// shape: none starts before the profile proved loadable.
	verdict *verdict
	key     string
	// buildDir replaces the /sandbox tmpfs (custom image builds).
	buildDir string
}

// newShape derives the shape of normalized options o with their parsed
// limits and seccomp profile, and its key.
func newShape(o Options, l limits, profile *specs.LinuxSeccomp) (*shape, error) {
	s := &shape{
		limits: l, cpu: o.CPULimit, pids: o.PidsLimit, readonly: true,
		network: o.Network, seccomp: o.Security.Seccomp, profile: profile,
	}
	if o.ReadonlyRootFs != nil {
		s.readonly = *o.ReadonlyRootFs
	}
	// The profile enters the key by content: two custom profiles at one
	// path, or one profile at two paths, are told apart by what they do.
	data, err := json.Marshal(profile)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	sum := sha256.Sum256(data)
	s.key = fmt.Sprintf("mem=%d sandbox=%d tmp=%d cpu=%s pids=%d ro=%t net=%q seccomp=%q profile=%s",
		l.memory, l.sandboxSize, l.tmpSize, strconv.FormatFloat(s.cpu, 'g', -1, 64), s.pids,
		s.readonly, s.network, s.seccomp, hex.EncodeToString(sum[:8]))
	if o.buildDir != "" {
		s.buildDir = o.buildDir
		s.key += fmt.Sprintf(" build=%q", o.buildDir)
	}
	return s, nil
}

// writable reports a writable root filesystem, which a reset cannot
// restore: such sandboxes are never reused.
func (s *shape) writable() bool { return !s.readonly }

// poolKey names the host's pool for a shape and a pool policy.
func poolKey(s *shape, strategy string, size PoolSize) string {
	return fmt.Sprintf("%s strategy=%s clean=%d dirty=%d", s.key, strategy, size.Clean, size.Dirty)
}

// verdict delivers a seccomp profile's validation once and keeps it.
type verdict struct {
	ch   chan error
	mu   sync.Mutex
	done bool
	bad  error
}

// validate compiles the profile with libseccomp (~15 ms) in the
// background, beside the connection and the first sandbox's creation.
func validate(mode, customPath string, profile *specs.LinuxSeccomp) *verdict {
	v := &verdict{ch: make(chan error, 1)}
	go func() { v.ch <- seccomp.ValidateFor(mode, customPath, profile) }()
	return v
}

// ok waits for the verdict. A profile that fails refuses every execution.
func (v *verdict) ok(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.done {
		select {
		case v.bad = <-v.ch:
			v.done = true
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if v.bad != nil {
		return invalid(v.bad)
	}
	return nil
}

// loadShape parses the view's seccomp profile (once it succeeds) and
// returns the view's shape.
func (e *Engine) loadShape() (*shape, error) {
	e.startMu.Lock()
	defer e.startMu.Unlock()
	if e.shape != nil {
		return e.shape, nil
	}
	sec := e.opts.Security
	profile, err := seccomp.Parse(sec.Seccomp, sec.CustomProfilePath)
	if err != nil {
		return nil, invalid(err)
	}
	sh, err := newShape(e.opts, e.limits, profile)
	if err != nil {
		return nil, err
	}
	sh.verdict = validate(sec.Seccomp, sec.CustomProfilePath, profile)
	e.shape = sh
	return sh, nil
}

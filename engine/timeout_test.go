package engine

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
)

// TestTimeoutBounds: hostile timeouts used to overflow into a negative
// duration (9223372036854 ms) or switch the agent's timer off (MaxInt64).
// They are now refused above maxTimeoutMs, and every conversion saturates.
func TestTimeoutBounds(t *testing.T) {
	e, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		ms      int64
		want    time.Duration // 0: refused
		wantErr string
	}{
		{"one ms", 1, time.Millisecond, ""},
		{"the maximum", 3600000, time.Hour, ""},
		{"just above", 3600001, 0, "maxTimeoutMs"},
		{"overflows a duration", 9223372036854, 0, "maxTimeoutMs"},
		{"just past the overflow", 9223372036855, 0, "maxTimeoutMs"},
		{"MaxInt64", math.MaxInt64, 0, "maxTimeoutMs"},
		{"negative", -1, 0, "Must be greater than 0"},
		{"MinInt64", math.MinInt64, 0, "Must be greater than 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := e.plan(Request{Runtime: "bash", Cmd: "true", TimeoutMs: tc.ms})
			if tc.wantErr != "" {
				if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("timeoutMs %d: want an invalid-argument error with %q, got %v", tc.ms, tc.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("timeoutMs %d: %v", tc.ms, err)
			}
			if p.timeout != tc.want || hostDeadline(p.timeout) <= p.timeout {
				t.Fatalf("timeoutMs %d: timeout %s, host deadline %s", tc.ms, p.timeout, hostDeadline(p.timeout))
			}
		})
	}
}

// TestTimeoutOptionBounds: the engine's own default timeout and the
// maximum are checked the same way.
func TestTimeoutOptionBounds(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		ok   bool
	}{
		{Options{TimeoutMs: 9223372036854}, false},
		{Options{TimeoutMs: math.MaxInt64}, false},
		{Options{TimeoutMs: 7200000, MaxTimeoutMs: 7200000}, true},
		{Options{TimeoutMs: 7200001, MaxTimeoutMs: 7200000}, false},
		{Options{MaxTimeoutMs: -1}, false},
		{Options{MaxTimeoutMs: math.MaxInt64}, true},
		// Not a timeout, but the same overflow once the agent's threads are added.
		{Options{PidsLimit: math.MaxInt64}, false},
		{Options{PidsLimit: 4 << 20}, true},
	} {
		_, err := New(tc.opts)
		if tc.ok != (err == nil) || (err != nil && !errdefs.IsInvalidArgument(err)) {
			t.Errorf("New(timeoutMs %d, maxTimeoutMs %d): %v", tc.opts.TimeoutMs, tc.opts.MaxTimeoutMs, err)
		}
	}
	// Even a maximum of MaxInt64 ms gives a positive, saturated duration.
	e, err := New(Options{MaxTimeoutMs: math.MaxInt64})
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.plan(Request{Runtime: "bash", Cmd: "true", TimeoutMs: math.MaxInt64})
	if err != nil {
		t.Fatal(err)
	}
	if p.timeout <= 0 || hostDeadline(p.timeout) < p.timeout || p.timeout.Milliseconds() <= 0 {
		t.Fatalf("timeout %s host deadline %s", p.timeout, hostDeadline(p.timeout))
	}
}

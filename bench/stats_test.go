package main

import (
	"testing"
	"time"
)

func seq(n int) []time.Duration {
	s := make([]time.Duration, n)
	for i := range s {
		s[i] = time.Duration(i+1) * time.Millisecond
	}
	return s
}

func TestPercentile(t *testing.T) {
	for _, tc := range []struct {
		n    int
		p    float64
		want time.Duration
	}{
		{0, 50, 0},
		{1, 50, 1 * time.Millisecond},
		{1, 95, 1 * time.Millisecond},
		{5, 50, 3 * time.Millisecond},
		{5, 95, 5 * time.Millisecond},
		{10, 50, 5 * time.Millisecond},
		{20, 50, 10 * time.Millisecond},
		{20, 95, 19 * time.Millisecond},
		{20, 100, 20 * time.Millisecond},
		{21, 95, 20 * time.Millisecond},
		{100, 1, 1 * time.Millisecond},
		{100, 95, 95 * time.Millisecond},
		{3, 0, 1 * time.Millisecond},
	} {
		if got := percentile(seq(tc.n), tc.p); got != tc.want {
			t.Errorf("percentile(1..%d ms, %v) = %v, want %v", tc.n, tc.p, got, tc.want)
		}
	}
}

func TestNewSeriesSortsACopy(t *testing.T) {
	in := []time.Duration{5, 1, 4, 2, 3}
	s := newSeries(in)
	if s.P50 != 3 || s.P95 != 5 {
		t.Errorf("p50, p95 = %v, %v; want 3ns, 5ns", s.P50, s.P95)
	}
	if in[0] != 5 || s.Samples[0] != 5 {
		t.Errorf("samples were reordered: %v", in)
	}
}

func TestMs(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                         "0.0",
		1234567 * time.Nanosecond: "1.2",
		1250 * time.Microsecond:   "1.2", // %.1f rounds half to even on the binary value
		99960 * time.Microsecond:  "100.0",
	} {
		if got := ms(d); got != want {
			t.Errorf("ms(%v) = %q, want %q", d, got, want)
		}
	}
}

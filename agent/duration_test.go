package agent

import (
	"math"
	"testing"
	"time"
)

func TestMsDurationSaturates(t *testing.T) {
	limit := int64(math.MaxInt64 / time.Millisecond)
	for ms, want := range map[int64]time.Duration{
		math.MinInt64: 0,
		-1:            0,
		0:             0,
		1:             time.Millisecond,
		3600000:       time.Hour,
		limit:         time.Duration(limit) * time.Millisecond,
		limit + 1:     time.Duration(math.MaxInt64),
		9223372036854: time.Duration(math.MaxInt64),
		math.MaxInt64: time.Duration(math.MaxInt64),
	} {
		if got := MsDuration(ms); got != want || got < 0 {
			t.Errorf("MsDuration(%d) = %v, want %v", ms, got, want)
		}
	}
}

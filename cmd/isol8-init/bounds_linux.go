package main

import (
	"math"
	"time"
)

// msDuration turns a millisecond count from the engine into a duration,
// saturating instead of overflowing: a huge TimeoutMs must mean "long", never
// a negative duration or none at all.
func msDuration(ms int64) time.Duration {
	switch {
	case ms <= 0:
		return 0
	case ms > int64(math.MaxInt64/time.Millisecond):
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(ms) * time.Millisecond
}

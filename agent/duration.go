package agent

import (
	"math"
	"time"
)

// MsDuration turns a millisecond count of the protocol (Exec.TimeoutMs and
// the like) into a duration, saturating instead of overflowing: a huge
// count must mean "long", never a negative duration or none at all.
// time.Duration holds at most about 292 years.
func MsDuration(ms int64) time.Duration {
	switch {
	case ms <= 0:
		return 0
	case ms > int64(math.MaxInt64/time.Millisecond):
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(ms) * time.Millisecond
}

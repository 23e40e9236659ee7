package main

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of
// sorted (ascending): the sample at rank ⌈p/100 · n⌉, counting from 1. It
// returns 0 for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// p·n first: exact for integral p, so 95·20/100 is exactly rank 19.
	rank := int(math.Ceil(p * float64(n) / 100))
	return sorted[min(max(rank, 1), n)-1]
}

// series is the wall times of one measurement cell.
type series struct {
	Samples []time.Duration
	P50     time.Duration
	P95     time.Duration
}

func newSeries(samples []time.Duration) series {
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	return series{Samples: samples, P50: percentile(sorted, 50), P95: percentile(sorted, 95)}
}

// ms formats d in milliseconds with one decimal.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond))
}

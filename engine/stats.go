package engine

import "sync/atomic"

// poolStats counts pool acquisitions over the host's life.
type poolStats struct {
	hits, misses atomic.Int64
}

func (s *poolStats) count(hit bool) {
	if hit {
		s.hits.Add(1)
	} else {
		s.misses.Add(1)
	}
}

// PoolStats is a snapshot of a host's warm pools.
type PoolStats struct {
	// Idle is the number of ready sandboxes over every pool.
	Idle int
	// Hits and Misses count executions that found a ready sandbox and
	// those that had to make one.
	Hits, Misses int64
}

// PoolStats reports the host's warm pools, for metrics.
func (h *Host) PoolStats() PoolStats {
	h.mu.Lock()
	pools := make([]*pool, 0, len(h.pools))
	for _, p := range h.pools {
		pools = append(pools, p)
	}
	h.mu.Unlock()
	st := PoolStats{Hits: h.stats.hits.Load(), Misses: h.stats.misses.Load()}
	for _, p := range pools {
		p.mu.Lock()
		for _, list := range p.idle {
			st.Idle += len(list)
		}
		p.mu.Unlock()
	}
	return st
}

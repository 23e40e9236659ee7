package server

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/engine"
)

// textSessionNotFound answers for unknown sessions and for other tenants'
// sessions alike, so a tenant cannot learn another's session ids.
const textSessionNotFound = "Session not found"

var errSessionNotFound = api.NotFound(errorString(textSessionNotFound))

// session is a persistent engine bound to the tenant that created it.
type session struct {
	id         string
	tenant     string
	eng        *engine.Engine
	lastAccess time.Time
	active     int // executions and file operations in flight
}

// sessions is the registry of persistent sessions.
type sessions struct {
	mu  sync.Mutex
	m   map[string]*session
	max int
}

func newSessions(max int) *sessions { return &sessions{m: map[string]*session{}, max: max} }

// acquire returns the caller's session id, made with create when it does
// not exist (create nil: not found), and marks it in use until release.
// Another tenant's session is reported as not found.
func (r *sessions) acquire(id string, cl caller, create func() (*engine.Engine, error)) (*session, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.m[id]; ok {
		if !cl.owns(s.tenant) {
			return nil, false, errSessionNotFound
		}
		s.active++
		s.lastAccess = time.Now()
		return s, false, nil
	}
	if create == nil {
		return nil, false, errSessionNotFound
	}
	if len(r.m) >= r.max {
		return nil, false, api.Exhaustedf("Too many sessions (limit %d)", r.max)
	}
	eng, err := create()
	if err != nil {
		return nil, false, err
	}
	s := &session{id: id, tenant: cl.sessionOwner(), eng: eng, lastAccess: time.Now(), active: 1}
	r.m[id] = s
	return s, true, nil
}

// release ends a use of s.
func (r *sessions) release(s *session) {
	r.mu.Lock()
	s.active--
	s.lastAccess = time.Now()
	r.mu.Unlock()
}

// remove forgets the caller's session id and returns it (nil when it does
// not exist or is another tenant's).
func (r *sessions) remove(id string, cl caller) *session {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.m[id]
	if !ok || !cl.owns(s.tenant) {
		return nil
	}
	delete(r.m, id)
	return s
}

// sessionInfo is one entry of GET /sessions.
type sessionInfo struct {
	ID             string `json:"id"`
	IsActive       bool   `json:"isActive"`
	LastAccessedAt string `json:"lastAccessedAt"`
}

// list returns the caller's sessions, by id.
func (r *sessions) list(cl caller) []sessionInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []sessionInfo{}
	for _, s := range r.m {
		if cl.owns(s.tenant) {
			out = append(out, sessionInfo{ID: s.id, IsActive: s.active > 0, LastAccessedAt: isoTime(s.lastAccess)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (r *sessions) count() (total, active int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.m {
		if s.active > 0 {
			active++
		}
	}
	return len(r.m), active
}

// idle removes and returns the sessions unused for longer than maxAge.
// A session in use is never taken: use and removal share the lock.
func (r *sessions) idle(maxAge time.Duration) []*session {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*session
	now := time.Now()
	for id, s := range r.m {
		if s.active == 0 && now.Sub(s.lastAccess) > maxAge {
			delete(r.m, id)
			out = append(out, s)
		}
	}
	return out
}

// stopAll stops every session (Close and /cleanup) and reports how many
// stopped and the failures.
func (r *sessions) stopAll(ctx context.Context, log *slog.Logger) (removed int, errs []string) {
	r.mu.Lock()
	all := r.m
	r.m = map[string]*session{}
	r.mu.Unlock()
	return stopSessions(ctx, log, all)
}

// stopMatching stops the sessions cl owns.
func (r *sessions) stopOwned(ctx context.Context, log *slog.Logger, cl caller) (int, []string) {
	r.mu.Lock()
	mine := map[string]*session{}
	for id, s := range r.m {
		if cl.owns(s.tenant) {
			mine[id] = s
			delete(r.m, id)
		}
	}
	r.mu.Unlock()
	return stopSessions(ctx, log, mine)
}

func stopSessions(ctx context.Context, log *slog.Logger, m map[string]*session) (removed int, errs []string) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id, s := range m {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.eng.Stop(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, id+": "+err.Error())
				log.Warn("session stop failed", "sessionId", id, "error", err)
				return
			}
			removed++
		}()
	}
	wg.Wait()
	return removed, errs
}

// pruneLoop stops idle sessions every PruneInterval.
func (s *Server) pruneLoop() {
	defer s.bg.Done()
	t := time.NewTicker(s.opts.PruneInterval)
	defer t.Stop()
	maxAge := time.Duration(s.cfg.Cleanup.MaxContainerAgeMs) * time.Millisecond
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		old := s.sessions.idle(maxAge)
		if len(old) == 0 {
			continue
		}
		for _, ss := range old {
			s.log.Debug("[Server] Auto-pruning idle session", "sessionId", ss.id, "idleMs", time.Since(ss.lastAccess).Milliseconds())
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := ss.eng.Stop(ctx); err != nil {
				s.log.Warn("prune session failed", "sessionId", ss.id, "error", err)
			}
			cancel()
		}
		s.metrics.pruned.Add(float64(len(old)))
		s.log.Debug("[Server] Auto-prune done", "removed", len(old))
	}
}

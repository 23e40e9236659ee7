package server

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/engine"
)

// viewCache keeps the engine views of ephemeral requests, one per distinct
// set of options, so that repeated requests reuse a view (and so the
// host's warm pool for its sandbox shape) instead of making one each time.
// Views are counted while in use and only idle ones are evicted.
type viewCache struct {
	host *engine.Host
	max  int

	mu sync.Mutex
	m  map[string]*cachedView
}

type cachedView struct {
	eng  *engine.Engine
	uses int
}

func newViewCache(h *engine.Host, max int) *viewCache {
	return &viewCache{host: h, max: max, m: map[string]*cachedView{}}
}

// get returns a view for o and the function that ends its use.
func (c *viewCache) get(o api.Options) (*engine.Engine, func(), error) {
	data, err := json.Marshal(o)
	if err != nil {
		return nil, nil, err
	}
	key := string(data)
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.m[key]; ok {
		v.uses++
		return v.eng, c.done(v), nil
	}
	eng, err := c.host.Session(o)
	if err != nil {
		return nil, nil, err
	}
	if len(c.m) >= c.max && !c.evictIdle() {
		// Every cached view is busy: this one serves one request.
		return eng, func() { go eng.Stop(context.Background()) }, nil
	}
	v := &cachedView{eng: eng, uses: 1}
	c.m[key] = v
	return eng, c.done(v), nil
}

func (c *viewCache) done(v *cachedView) func() {
	return func() {
		c.mu.Lock()
		v.uses--
		c.mu.Unlock()
	}
}

// evictIdle stops one idle view; it reports false when all are in use.
func (c *viewCache) evictIdle() bool {
	for k, v := range c.m {
		if v.uses == 0 {
			delete(c.m, k)
			go v.eng.Stop(context.Background())
			return true
		}
	}
	return false
}

func (c *viewCache) stopAll(ctx context.Context) {
	c.mu.Lock()
	all := c.m
	c.m = map[string]*cachedView{}
	c.mu.Unlock()
	for _, v := range all {
		_ = v.eng.Stop(ctx)
	}
}

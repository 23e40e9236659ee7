package engine

import (
	"testing"

	"github.com/isol8/isol8/config"
	"github.com/isol8/isol8/internal/userns"
)

// The config file's defaults for security.userns (shown and validated by
// package config, which may import no allocator) and the allocator's own
// must be the same range, or validation would judge a range the engine
// never uses.
func TestUserNSDefaultsAgree(t *testing.T) {
	c := (*config.UserNS)(nil).Effective()
	if c.Base != int64(userns.DefaultBase) || c.Size != int64(userns.DefaultSize) ||
		c.Count != userns.DefaultCount || c.StateDir != userns.DefaultDir {
		t.Fatalf("config defaults %+v differ from the allocator's (base %d, size %d, count %d, dir %s)",
			c, userns.DefaultBase, userns.DefaultSize, userns.DefaultCount, userns.DefaultDir)
	}
}

package engine

import (
	"context"
	"fmt"
)

// BackendInfo says which container backend an engine reached.
type BackendInfo struct {
	Address  string // containerd socket
	Version  string // containerd version
	Revision string // containerd git revision
}

// Backend connects (Start) and reports the backend's address and version,
// so commands can tell the user what they talk to before long work.
func (e *Engine) Backend(ctx context.Context) (BackendInfo, error) {
	if err := e.Start(ctx); err != nil {
		return BackendInfo{}, err
	}
	v, err := e.drv.Client().Version(ctx)
	if err != nil {
		return BackendInfo{}, fmt.Errorf("containerd version at %s: %w", e.drv.Address(), err)
	}
	return BackendInfo{Address: e.drv.Address(), Version: v.Version, Revision: v.Revision}, nil
}

// imageIDs maps image names to their image id (the digest of the image's
// config, as docker shows it; the manifest digest when the config cannot
// be read).
func (e *Engine) imageIDs(ctx context.Context, names []string) map[string]string {
	ids := make(map[string]string, len(names))
	c := e.drv.Client()
	for _, name := range names {
		img, err := c.GetImage(withNS(ctx), name)
		if err != nil {
			continue
		}
		ids[name] = img.Target().Digest.Encoded()
		if cfg, err := img.Config(withNS(ctx)); err == nil {
			ids[name] = cfg.Digest.Encoded()
		}
	}
	return ids
}

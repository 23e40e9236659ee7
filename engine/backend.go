package engine

import (
	"context"

	"github.com/isol8/isol8/driver"
)

// BackendInfo says which container backend an engine reached.
type BackendInfo = driver.BackendInfo

// Backend reports the engine's host's backend (see Host.Backend).
func (e *Engine) Backend(ctx context.Context) (BackendInfo, error) {
	return e.host.Backend(ctx)
}

// Backend connects (Start) and reports the backend's address and version,
// so commands can tell the user what they talk to before long work.
func (h *Host) Backend(ctx context.Context) (BackendInfo, error) {
	if err := h.Start(ctx); err != nil {
		return BackendInfo{}, err
	}
	return h.drv.Info(ctx)
}

// imageIDs maps image names to their image id (the digest of the image's
// config, as docker shows it).
func (h *Host) imageIDs(ctx context.Context, names []string) map[string]string {
	ids := make(map[string]string, len(names))
	for _, name := range names {
		if info, err := h.drv.ImageInfo(ctx, name); err == nil {
			ids[name] = info.ID
		}
	}
	return ids
}

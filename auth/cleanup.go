package auth

import (
	"context"
	"log/slog"
	"time"
)

// RunCleanup deletes expired and revoked keys from s now and then every
// interval until ctx is done. The first sweep runs at once so that a
// server restarted more often than the interval still cleans up. A
// non-positive interval disables the sweep. Failures are logged and the
// next sweep tries again.
func RunCleanup(ctx context.Context, s Store, every time.Duration, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if every <= 0 {
		log.Warn("API key cleanup disabled: interval is not positive", "interval", every)
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		sweep(ctx, s, log)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func sweep(ctx context.Context, s Store, log *slog.Logger) {
	n, err := s.DeleteExpired(ctx, time.Now())
	switch {
	case err != nil && ctx.Err() == nil:
		log.Warn("API key cleanup failed", "err", err)
	case n > 0:
		log.Info("API key cleanup", "deleted", n)
	default:
		log.Debug("API key cleanup", "deleted", 0)
	}
}

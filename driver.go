package isol8

import (
	"context"
	"log/slog"

	"github.com/isol8/isol8/driver"
	ctrd "github.com/isol8/isol8/driver/containerd"
	"github.com/isol8/isol8/engine"
)

// ContainerdOptions locate (or start) containerd for the default driver.
type ContainerdOptions = engine.ContainerdOptions

// ContainerdDriver returns the factory of the default backend: containerd,
// found or started as c says. New uses it when Options.NewDriver is nil;
// this is the one place that picks containerd for a local engine.
func ContainerdDriver(c ContainerdOptions) engine.DriverFactory {
	return func(ctx context.Context, log *slog.Logger) (driver.Driver, error) {
		return ctrd.New(ctx, ctrd.Config{
			Address:       c.Address,
			RuntimeBinary: c.RuntimeBinary,
			NoAutoStart:   c.NoAutoStart,
			Logger:        log,
		})
	}
}

package isol8

import (
	"context"
	"log/slog"

	"github.com/isol8/isol8/driver"
	ctrd "github.com/isol8/isol8/driver/containerd"
	"github.com/isol8/isol8/driver/docker"
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

// DockerDriver returns the factory of the Docker backend: the daemon at
// host ("unix:///path" or "tcp://..."), or DOCKER_HOST, or
// unix:///var/run/docker.sock when host is empty.
func DockerDriver(host string) engine.DriverFactory {
	return func(ctx context.Context, log *slog.Logger) (driver.Driver, error) {
		return docker.New(ctx, docker.Config{Host: host, Logger: log})
	}
}

// Driver names.
const (
	DriverContainerd = "containerd"
	DriverDocker     = docker.Name
)

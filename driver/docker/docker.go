// Package docker implements driver.Driver on the Docker Engine API: the
// engine's runtime spec is projected onto a container create call (see
// project.go), the init agent runs as the container's pid 1 and is reached
// through attach, and images are loaded from the OCI layouts the image
// builder writes. It talks to the daemon at Config.Host, else DOCKER_HOST,
// else unix:///var/run/docker.sock, and needs a daemon speaking API 1.40 or
// later (Docker 19.03).
package docker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/driver"
)

// Name is the driver's name in --driver, the config and ISOL8_DRIVER.
const Name = "docker"

// CgroupParent is the cgroup every sandbox is placed under; with the
// cgroupfs cgroup driver a sandbox's cgroup is CgroupParent/<container id>.
const CgroupParent = "/isol8-docker"

// Config says how to reach the Docker daemon.
type Config struct {
	// Host is the daemon's address ("unix:///path", "tcp://..."); empty
	// means DOCKER_HOST, then unix:///var/run/docker.sock.
	Host   string
	Logger *slog.Logger
}

// Driver implements driver.Driver on Docker.
type Driver struct {
	client *client.Client
	host   string
	log    *slog.Logger
}

var _ driver.Driver = (*Driver)(nil)

// New connects to the daemon and checks it answers with a usable API
// version, so an unreachable daemon fails here, before any code runs.
func New(ctx context.Context, cfg Config) (*Driver, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host := cfg.Host
	if host == "" {
		host = os.Getenv("DOCKER_HOST")
	}
	if host == "" {
		host = client.DefaultDockerHost
	}
	c, err := client.New(client.WithHost(host))
	if err != nil {
		return nil, api.InvalidArgumentf("docker host %q: %v", host, err)
	}
	d := &Driver{client: c, host: host, log: log}
	if err := d.ping(ctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	return d, nil
}

// ping checks the daemon answers and negotiates the API version; its errors
// say what to do.
func (d *Driver) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := d.client.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true, ForceNegotiate: true}); err != nil {
		return connectError(d.host, err)
	}
	// A ping may fail to negotiate silently (old daemons answer without a
	// version header); the version call tells for sure.
	if _, err := d.client.ServerVersion(ctx, client.ServerVersionOptions{}); err != nil {
		return connectError(d.host, err)
	}
	return nil
}

// connectError classifies a failed first contact with the daemon.
func connectError(host string, err error) error {
	switch {
	case errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EACCES) || strings.Contains(err.Error(), "permission denied"):
		return api.PermissionDeniedf("Docker socket %s: permission denied: run isol8 as root or join the docker group (%v)", socketOf(host), err)
	case strings.Contains(err.Error(), "API version") || strings.Contains(err.Error(), "too old") || strings.Contains(err.Error(), "minimum supported API version"):
		return api.FailedPreconditionf("Docker daemon at %s is too old: isol8 needs API %s or later (Docker 19.03+); upgrade Docker (%v)", host, client.MinAPIVersion, err)
	case isDialError(err):
		return api.Unavailablef("Docker unreachable at %s: Docker is not running or not installed; start dockerd (systemctl start docker), install it (apt-get install docker.io) or set DOCKER_HOST (%v)", socketOf(host), err)
	}
	return api.Unavailablef("Docker check failed at %s: %v", socketOf(host), err)
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) || errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) ||
		errdefs.IsUnavailable(err) || errors.Is(err, context.DeadlineExceeded) ||
		strings.Contains(err.Error(), "Cannot connect to the Docker daemon")
}

// socketOf is the socket path of a unix host, else the host.
func socketOf(host string) string {
	if p, ok := strings.CutPrefix(host, "unix://"); ok {
		return p
	}
	return host
}

// Client exposes the Docker client to tests that inspect what the driver
// made.
func (d *Driver) Client() *client.Client { return d.client }

// Host is the daemon address the driver talks to.
func (d *Driver) Host() string { return d.host }

// Info reports the daemon's address and version.
func (d *Driver) Info(ctx context.Context) (driver.BackendInfo, error) {
	v, err := d.client.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return driver.BackendInfo{}, fmt.Errorf("docker version at %s: %w", d.host, err)
	}
	return driver.BackendInfo{Name: Name, Address: d.host, Version: v.Version, Revision: "API " + v.APIVersion}, nil
}

// SandboxUserNS is false: Docker cannot run a container in a user
// namespace of its own (only the daemon-wide userns-remap), so the engine
// allocates none (see docs/security.md).
func (d *Driver) SandboxUserNS() bool { return false }

// Close closes the client's connections.
func (d *Driver) Close() error { return d.client.Close() }

// cleanup runs an undo step on a context detached from a possibly cancelled
// caller, with its own deadline, and logs (never returns) its failure.
func cleanup(ctx context.Context, log *slog.Logger, what string, f func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := f(ctx); err != nil && !errdefs.IsNotFound(err) {
		log.Warn("cleanup failed", "step", what, "error", err)
	}
}

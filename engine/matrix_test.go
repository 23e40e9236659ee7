package engine

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/isol8/isol8/driver"
	ctrd "github.com/isol8/isol8/driver/containerd"
	"github.com/isol8/isol8/driver/docker"
	"github.com/isol8/isol8/image"
	"github.com/isol8/isol8/internal/dockertest"
	"github.com/isol8/isol8/internal/testenv"
	"github.com/isol8/isol8/oci"
)

// TestMain stops the test dockerd (started by the first Docker subtest)
// after the tests.
func TestMain(m *testing.M) { dockertest.Main(m) }

// backend is a driver the integration tests run the engine on.
type backend string

const (
	backendContainerd backend = "containerd"
	backendDocker     backend = "docker"
)

// backends is the driver matrix: the core integration tests run once per
// driver, as subtests named after it, so a failure names the driver.
var backends = []backend{backendContainerd, backendDocker}

// matrix runs f once per driver.
func matrix(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(string(b), func(t *testing.T) { f(t, b) })
	}
}

// engineBackends remembers which driver a test engine runs on, for the
// helpers that look into the backend (assertNothingLeft).
var engineBackends sync.Map // *Engine → backend

func backendOf(e *Engine) backend {
	if b, ok := engineBackends.Load(e); ok {
		return b.(backend)
	}
	return backendContainerd
}

// engine returns a started engine on driver b, stopped when the test ends.
// The Docker engine runs on the test binary's own dockerd, with the five
// runtime images loaded from the isol8 containerd.
func (b backend) engine(t *testing.T, opts Options) *Engine {
	t.Helper()
	if b == backendContainerd {
		return newTestEngine(t, opts)
	}
	names := make([]string, 0, len(image.Runtimes))
	for _, rt := range image.Runtimes {
		names = append(names, image.Name(rt))
	}
	host := dockertest.MustHave(t, names...)
	opts.InitPath = testenv.InitBinary(t)
	if opts.NewDriver == nil {
		opts.NewDriver = dockerDriver(host)
	}
	e, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	engineBackends.Store(e, b)
	if err := e.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
		engineBackends.Delete(e)
	})
	return e
}

// dockerDriver is the factory of the Docker driver on host.
func dockerDriver(host string) DriverFactory {
	return func(ctx context.Context, log *slog.Logger) (driver.Driver, error) {
		return docker.New(ctx, docker.Config{Host: host, Logger: log})
	}
}

// assertNothingLeftDocker checks that no container of the given sandboxes
// remains on the test dockerd.
func assertNothingLeftDocker(t *testing.T, ids ...string) {
	t.Helper()
	d, err := dockertest.Daemon.Get()
	if err != nil {
		t.Fatal(err)
	}
	drv, err := docker.New(t.Context(), docker.Config{Host: d.Host})
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	left, err := drv.ListSandboxes(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		for _, l := range left {
			if l.ID == id {
				t.Errorf("container %s left behind on docker", id)
			}
		}
	}
}

// testDockerDriver connects a driver of its own to the test dockerd.
func testDockerDriver(t *testing.T) *docker.Driver {
	t.Helper()
	d, err := dockertest.Daemon.Get()
	if err != nil {
		t.Fatal(err)
	}
	drv, err := docker.New(context.WithoutCancel(t.Context()), docker.Config{Host: d.Host})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drv.Close() })
	return drv
}

// dockerInspect inspects sandbox id on the test dockerd.
func dockerInspect(t *testing.T, id string) container.InspectResponse {
	t.Helper()
	res, err := testDockerDriver(t).Client().ContainerInspect(t.Context(), id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Container
}

// sandboxPidsDir is the pids cgroup directory of sandbox id on e's driver.
func sandboxPidsDir(t *testing.T, e *Engine, id string) string {
	t.Helper()
	if backendOf(e) == backendDocker {
		return pidsCgroupDirOf(docker.CgroupParent + "/" + dockerInspect(t, id).ID)
	}
	return pidsCgroupDir(id)
}

// sandboxIDsOf lists the sandboxes on e's backend carrying labels.
func sandboxIDsOf(t *testing.T, e *Engine, labels map[string]string) []string {
	t.Helper()
	var drv driver.Driver
	if backendOf(e) == backendDocker {
		drv = testDockerDriver(t)
	} else {
		c, err := ctrd.New(t.Context(), ctrd.Config{Address: e.opts.Containerd.Address})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		drv = c
	}
	infos, err := drv.ListSandboxes(t.Context(), labels)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, i := range infos {
		ids = append(ids, i.ID)
	}
	return ids
}

// forgeDockerSandbox creates, on the test dockerd, a running sandbox from
// image with labels, as an engine of another process would have; Docker
// cannot relabel a container, so tests that need a crashed creator's
// sandbox make one.
func forgeDockerSandbox(t *testing.T, e *Engine, image string, labels map[string]string) string {
	t.Helper()
	spec, err := oci.New(oci.WithInit(e.host.initPath))
	if err != nil {
		t.Fatal(err)
	}
	id := newSandboxID()
	sb, err := testDockerDriver(t).Create(t.Context(), driver.CreateRequest{ID: id, Image: image, Spec: spec, Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return id
}

package engine

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/isol8/isol8/driver"
	ctrd "github.com/isol8/isol8/driver/containerd"
	"github.com/isol8/isol8/image"
	"github.com/isol8/isol8/internal/testenv"
)

// containerdDriver is the factory the engine's tests inject: the real
// containerd driver on the test containerd. The engine itself never names a
// backend.
func containerdDriver(addr string) DriverFactory {
	return func(ctx context.Context, log *slog.Logger) (driver.Driver, error) {
		return ctrd.New(ctx, ctrd.Config{Address: addr, Logger: log})
	}
}

// withNS scopes ctx to isol8's containerd namespace, for tests that look
// into containerd directly.
func withNS(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, ctrd.Namespace)
}

// recordingDriver passes every call to a real driver and counts them.
type recordingDriver struct {
	driver.Driver
	mu    sync.Mutex
	calls map[string]int
}

func (r *recordingDriver) count(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls[name]++
}

func (r *recordingDriver) callsOf(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[name]
}

func (r *recordingDriver) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprint(r.calls)
}

func (r *recordingDriver) Create(ctx context.Context, req driver.CreateRequest) (driver.Sandbox, error) {
	r.count("Create")
	return r.Driver.Create(ctx, req)
}

func (r *recordingDriver) ListSandboxes(ctx context.Context, labels map[string]string) ([]driver.SandboxInfo, error) {
	r.count("ListSandboxes")
	return r.Driver.ListSandboxes(ctx, labels)
}

func (r *recordingDriver) ImageInfo(ctx context.Context, name string) (driver.ImageInfo, error) {
	r.count("ImageInfo")
	return r.Driver.ImageInfo(ctx, name)
}

func (r *recordingDriver) ListImages(ctx context.Context, labels map[string]string) ([]string, error) {
	r.count("ListImages")
	return r.Driver.ListImages(ctx, labels)
}

func (r *recordingDriver) Close() error {
	r.count("Close")
	return r.Driver.Close()
}

// The engine runs on the driver it is given: executions, listings and
// image checks go through the injected driver (a real containerd driver
// underneath, wrapped to count calls), and Stop closes it.
func TestEngineUsesInjectedDriver(t *testing.T) {
	addr := testenv.MustHaveContainerd(t)
	rec := &recordingDriver{calls: map[string]int{}}
	factoryCalls := 0
	opts := Options{
		PoolSize: noPool,
		NewDriver: func(ctx context.Context, log *slog.Logger) (driver.Driver, error) {
			factoryCalls++
			d, err := ctrd.New(ctx, ctrd.Config{Address: addr, Logger: log})
			rec.Driver = d
			return rec, err
		},
	}
	e := newTestEngine(t, opts)
	mustHaveImage(t, e, "bash")
	res := run(t, e, Request{Runtime: "bash", Code: "echo via-injected-driver"})
	if strings.TrimSpace(res.Stdout) != "via-injected-driver" || res.ExitCode != 0 {
		t.Fatalf("result = %+v", res)
	}
	if rec.callsOf("Create") < 1 {
		t.Errorf("the sandbox was not created through the injected driver: %v", rec)
	}
	if rec.callsOf("ImageInfo") < 2 { // mustHaveImage and the execution's image check
		t.Errorf("image checks bypassed the injected driver: %v", rec)
	}
	rep, err := e.Cleanup(t.Context(), CleanupOptions{DryRun: true, Images: true})
	if err != nil {
		t.Fatal(err)
	}
	if rec.callsOf("ListSandboxes") != 1 || rec.callsOf("ListImages") != 1 {
		t.Errorf("cleanup listings bypassed the injected driver: %v", rec)
	}
	found := false
	for _, name := range rep.Images {
		found = found || name == image.Name("bash")
	}
	if !found {
		t.Errorf("cleanup listed images %v, want %s among them", rep.Images, image.Name("bash"))
	}
	if err := e.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if factoryCalls != 1 || rec.callsOf("Close") != 1 {
		t.Errorf("factory called %d times, Close %d times; want 1 and 1", factoryCalls, rec.callsOf("Close"))
	}
}

// An engine nobody gave a driver refuses to start with a clear error.
func TestEngineWithoutDriver(t *testing.T) {
	e, err := New(Options{InitPath: "/nonexistent-init"})
	if err != nil {
		t.Fatal(err)
	}
	err = e.Start(t.Context())
	if err == nil || !strings.Contains(err.Error(), "NewDriver") {
		t.Fatalf("Start without a driver = %v, want an error naming Options.NewDriver", err)
	}
}

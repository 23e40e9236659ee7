package engine

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/moby/moby/client"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isol8/isol8/driver"
	"github.com/isol8/isol8/driver/docker"
	"github.com/isol8/isol8/image"
	"github.com/isol8/isol8/internal/dockertest"
)

// specRecorder wraps the Docker driver and keeps a copy of every spec the
// engine hands it.
type specRecorder struct {
	*docker.Driver
	mu    sync.Mutex
	specs map[string]*specs.Spec
}

func (r *specRecorder) Create(ctx context.Context, req driver.CreateRequest) (driver.Sandbox, error) {
	b, err := json.Marshal(req.Spec)
	if err != nil {
		return nil, err
	}
	var cp specs.Spec
	if err := json.Unmarshal(b, &cp); err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.specs[req.ID] = &cp
	r.mu.Unlock()
	return r.Driver.Create(ctx, req)
}

// mustMatch are fields Docker must reproduce exactly: no entry in
// docs/security.md can excuse a difference in them.
var mustMatch = map[string]bool{
	"process.user": true, "process.args": true, "process.noNewPrivileges": true,
	"process.capabilities.bounding": true, "process.capabilities.effective": true,
	"process.capabilities.permitted": true, "process.capabilities.inheritable": true,
	"process.capabilities.ambient": true, "root.readonly": true, "linux.seccomp": true,
	"linux.maskedPaths": true, "linux.readonlyPaths": true, "linux.sysctl": true,
	"linux.resources.memory": true, "linux.resources.cpu": true, "linux.resources.pids": true,
	"linux.namespaces.pid": true, "linux.namespaces.ipc": true, "linux.namespaces.mount": true,
	"linux.namespaces.network": true, "mount /sandbox": true, "mount /tmp": true,
	"mount /proc": true, "mount /dev/shm": true,
}

// TestDockerBundleMatchesSpec reads back the runtime spec Docker handed to
// runc (the bundle's config.json in the daemon's containerd state) and
// compares every security-relevant field with the spec the engine wrote. A
// difference fails unless docs/security.md lists the field (and it is not
// one that must match).
func TestDockerBundleMatchesSpec(t *testing.T) {
	doc, err := os.ReadFile("../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		opts Options
	}{
		{"none", Options{Network: NetworkNone}},
		{"host", Options{Network: NetworkHost, MemoryLimit: "256m", CPULimit: 0.5, PidsLimit: 20}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			host := dockertest.MustHave(t, image.Name("bash"))
			d, err := dockertest.Daemon.Get()
			if err != nil {
				t.Fatal(err)
			}
			rec := &specRecorder{specs: map[string]*specs.Spec{}}
			opts := tc.opts
			opts.PoolSize = noPool
			opts.NewDriver = func(ctx context.Context, log *slog.Logger) (driver.Driver, error) {
				drv, err := docker.New(ctx, docker.Config{Host: host, Logger: log})
				rec.Driver = drv
				return rec, err
			}
			e := backendDocker.engine(t, opts)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			events, err := e.ExecuteStream(ctx, Request{Runtime: "bash", Code: "echo up; sleep 60"})
			if err != nil {
				t.Fatal(err)
			}
			if ev := <-events; ev.Data != "up\n" {
				t.Fatalf("first event %+v", ev)
			}
			ids := liveIDs(e)
			if len(ids) != 1 {
				t.Fatalf("live sandboxes %v", ids)
			}
			rec.mu.Lock()
			want := rec.specs[ids[0]]
			rec.mu.Unlock()
			ins, err := rec.Client().ContainerInspect(t.Context(), ids[0], client.ContainerInspectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(d.BundleConfig(ins.Container.ID))
			if err != nil {
				t.Fatalf("bundle spec: %v", err)
			}
			var got specs.Spec
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			if dir := os.Getenv("ISOL8_TEST_DUMP"); dir != "" {
				w, _ := json.MarshalIndent(want, "", " ")
				g, _ := json.MarshalIndent(&got, "", " ")
				_ = os.WriteFile(dir+"/want-"+tc.name+".json", w, 0o644)
				_ = os.WriteFile(dir+"/got-"+tc.name+".json", g, 0o644)
			}
			// The engine allocates no user namespace for a driver that
			// cannot use one; docs/security.md must say what that means.
			for _, ns := range append(want.Linux.Namespaces, got.Linux.Namespaces...) {
				if ns.Type == specs.UserNamespace {
					t.Fatalf("a user namespace on docker: engine %v, docker %v", want.Linux.Namespaces, got.Linux.Namespaces)
				}
			}
			if !strings.Contains(string(doc), "`linux.namespaces.user`") {
				t.Fatal("docs/security.md does not list the missing per-sandbox user namespace (`linux.namespaces.user`)")
			}
			hostNetNSAsNone(t, &got)
			checkDifferences(t, string(doc), docker.SpecDifferences(want, &got))
			cancel()
			for range events {
			}
		})
	}
}

// hostNetNSAsNone spells Docker's host networking (joining the daemon's
// network namespace by path, which is this process's) like the engine's spec: no
// network namespace entry.
func hostNetNSAsNone(t *testing.T, s *specs.Spec) {
	t.Helper()
	host, err := os.Stat("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool {
		if ns.Type != specs.NetworkNamespace || ns.Path == "" {
			return false
		}
		fi, err := os.Stat(ns.Path)
		return err == nil && os.SameFile(fi, host)
	})
}

func checkDifferences(t *testing.T, doc string, diffs []docker.Difference) {
	t.Helper()
	for _, d := range diffs {
		listed := strings.Contains(doc, "`"+d.Field+"`")
		switch {
		case mustMatch[d.Field]:
			t.Errorf("docker: %s (a field Docker must reproduce)", d)
		case !listed:
			t.Errorf("docker: %s (not listed in docs/security.md)", d)
		default:
			t.Logf("known difference: %s", d)
		}
	}
}

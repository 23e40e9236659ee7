package engine

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/isol8/isol8/api"
)

// shapeKeyOf returns the shape key a view with options o gets.
func shapeKeyOf(t *testing.T, o Options) string {
	t.Helper()
	e, err := newView(nil, o)
	if err != nil {
		t.Fatalf("newView: %v", err)
	}
	sh, err := e.loadShape()
	if err != nil {
		t.Fatalf("loadShape: %v", err)
	}
	return sh.key
}

func writeProfile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Every option that changes a sandbox's runtime spec changes its shape key
// (so views never share a warm sandbox of another shape); what travels with
// each request (secrets, timeouts, output caps, the image, the mode) does
// not (so such views share the warm pool).
func TestShapeKey(t *testing.T) {
	dir := t.TempDir()
	allow := writeProfile(t, dir, "allow.json", `{"defaultAction":"SCMP_ACT_ALLOW"}`)
	allowCopy := writeProfile(t, dir, "allow-copy.json", `{"defaultAction":"SCMP_ACT_ALLOW"}`)
	deny := writeProfile(t, dir, "deny.json", `{"defaultAction":"SCMP_ACT_ERRNO"}`)
	f := false
	base := shapeKeyOf(t, Options{})
	if base != shapeKeyOf(t, Options{}) {
		t.Fatal("the shape key is not deterministic")
	}
	custom := func(path string) Options {
		return Options{Security: &Security{Seccomp: SeccompCustom, CustomProfilePath: path}}
	}
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"memory", Options{MemoryLimit: "256m"}},
		{"cpu", Options{CPULimit: 0.5}},
		{"pids", Options{PidsLimit: 32}},
		{"sandbox size", Options{SandboxSize: "128m"}},
		{"tmp size", Options{TmpSize: "64m"}},
		{"writable root", Options{ReadonlyRootFs: &f}},
		{"network", Options{Network: NetworkHost}},
		{"seccomp unconfined", Options{Security: &Security{Seccomp: SeccompUnconfined}}},
		{"seccomp custom", custom(allow)},
	} {
		t.Run("changes/"+tc.name, func(t *testing.T) {
			if got := shapeKeyOf(t, tc.o); got == base {
				t.Errorf("%s does not change the shape key %q", tc.name, got)
			}
		})
	}
	if shapeKeyOf(t, custom(allow)) == shapeKeyOf(t, custom(deny)) {
		t.Error("two custom profiles that differ share a shape key")
	}
	if shapeKeyOf(t, custom(allow)) != shapeKeyOf(t, custom(allowCopy)) {
		t.Error("one custom profile at two paths gets two shape keys")
	}
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"secrets", Options{Secrets: map[string]string{"TOKEN": "s3cr3t"}}},
		{"timeout", Options{TimeoutMs: 1234}},
		{"max output", Options{MaxOutputSize: 99}},
		{"stream cap", Options{StreamMaxOutput: 5}},
		{"image", Options{Image: "isol8:custom"}},
		{"mode", Options{Mode: ModePersistent}},
		{"debug", Options{Debug: true}},
		{"max timeout", Options{MaxTimeoutMs: 60000}},
		{"explicit defaults", Options{MemoryLimit: DefaultMemoryLimit, CPULimit: DefaultCPULimit, PidsLimit: DefaultPidsLimit}},
	} {
		t.Run("keeps/"+tc.name, func(t *testing.T) {
			if got := shapeKeyOf(t, tc.o); got != base {
				t.Errorf("%s changes the shape key:\n%s\n%s", tc.name, got, base)
			}
		})
	}
}

// The pool policy is part of a pool's key beside the shape: a secure view
// never takes a sandbox a fast view reset.
func TestPoolKeyPolicy(t *testing.T) {
	e, err := newView(nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sh, err := e.loadShape()
	if err != nil {
		t.Fatal(err)
	}
	fast := poolKey(sh, PoolFast, PoolSize{Clean: 1, Dirty: 1})
	for _, other := range []string{
		poolKey(sh, PoolSecure, PoolSize{Clean: 1, Dirty: 1}),
		poolKey(sh, PoolFast, PoolSize{Clean: 2, Dirty: 1}),
		poolKey(sh, PoolFast, PoolSize{}),
	} {
		if other == fast {
			t.Errorf("pool policies share the key %q", fast)
		}
	}
}

// A host's operator settings bound its views, and a client's session gets
// nothing the client did not ask for.
func TestHostViewPolicy(t *testing.T) {
	h, err := NewHost(HostOptions{MaxConcurrent: 3, MaxTimeoutMs: 100000, InitPath: "/opt/init"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.NewEngine(Options{MaxTimeoutMs: 200000}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("a view looser than its host: err = %v, want invalid argument", err)
	}
	if _, err := h.NewEngine(Options{TimeoutMs: 200000}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("a default timeout above the host's bound: err = %v, want invalid argument", err)
	}
	e, err := h.NewEngine(Options{MaxTimeoutMs: 50000, MaxConcurrent: 50, InitPath: "/elsewhere"})
	if err != nil {
		t.Fatal(err)
	}
	if e.opts.MaxTimeoutMs != 50000 || e.opts.MaxConcurrent != 3 || e.opts.InitPath != "/opt/init" || cap(h.sem) != 3 {
		t.Errorf("view options = timeout bound %d, maxConcurrent %d, init %q; host sem %d",
			e.opts.MaxTimeoutMs, e.opts.MaxConcurrent, e.opts.InitPath, cap(h.sem))
	}
	if _, err := h.Session(api.Options{Security: &api.Security{Seccomp: SeccompCustom}}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("custom seccomp on a host without a profile: err = %v, want invalid argument", err)
	}
	s, err := h.Session(api.Options{MemoryLimit: "256m", Secrets: map[string]string{"K": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	if s.opts.Persist || s.opts.OnKeep != nil || s.opts.StreamMaxOutput != 0 || s.opts.MemoryLimit != "256m" || s.opts.MaxTimeoutMs != 100000 {
		t.Errorf("session options = %+v", s.opts)
	}
	withProfile, err := NewHost(HostOptions{CustomProfilePath: "/etc/isol8/profile.json"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := withProfile.Session(api.Options{Security: &api.Security{Seccomp: SeccompCustom}})
	if err != nil {
		t.Fatal(err)
	}
	if c.opts.Security.CustomProfilePath != "/etc/isol8/profile.json" {
		t.Errorf("session's custom profile = %q, want the host's", c.opts.Security.CustomProfilePath)
	}
}

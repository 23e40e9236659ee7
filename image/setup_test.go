package image

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"

	ctrd "github.com/isol8/isol8/driver/containerd"
	"github.com/isol8/isol8/internal/testenv"
)

// syncBuffer collects progress lines and echoes them to the test log.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	t   *testing.T
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.t.Log(strings.TrimRight(string(p), "\n"))
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newDriver connects the containerd driver the images are built into, in
// containerd namespace ns; the returned context is scoped to ns for direct
// inspection through the driver's client.
func newDriver(t *testing.T, ns string) (*ctrd.Driver, context.Context) {
	t.Helper()
	addr := testenv.MustHaveContainerd(t)
	d, err := ctrd.New(t.Context(), ctrd.Config{Address: addr, Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, namespaces.WithNamespace(t.Context(), ns)
}

// TestSetup builds (or finds up to date) the five real runtime images in
// namespace isol8 and leaves them there: other packages' tests use them.
func TestSetup(t *testing.T) {
	testenv.MustHaveCommand(t, "mmdebstrap")
	d, ctx := newDriver(t, ctrd.Namespace)
	c := d.Client()

	out := &syncBuffer{t: t}
	results, err := Setup(ctx, d, Options{Progress: out})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	if len(results) != len(Runtimes) {
		t.Fatalf("%d results, want %d", len(results), len(Runtimes))
	}

	var base string
	for _, rt := range Runtimes {
		img, err := c.ImageService().Get(ctx, Name(rt))
		if err != nil {
			t.Fatalf("image %s: %v", Name(rt), err)
		}
		want := map[string]string{
			LabelManaged:   "true",
			LabelRuntime:   rt,
			LabelBuildHash: buildHash(defaultBase, defaultRecipes[rt]),
		}
		for k, v := range want {
			if img.Labels[k] != v {
				t.Errorf("%s: label %s = %q, want %q", rt, k, img.Labels[k], v)
			}
		}
		info, err := d.ImageInfo(ctx, Name(rt))
		if err != nil {
			t.Fatal(err)
		}
		wantLayers := 2
		switch rt {
		case "bash":
			wantLayers = 1
		case "agent": // apt (git) and npm (bun, pi)
			wantLayers = 3
		}
		if len(info.Layers) != wantLayers {
			t.Errorf("%s: %d layers, want %d", rt, len(info.Layers), wantLayers)
			continue
		}
		if base == "" {
			base = info.Layers[0]
		} else if got := info.Layers[0]; got != base {
			t.Errorf("%s: base layer %s, want the shared %s", rt, got, base)
		}
		ok, err := client.NewImage(c, img).IsUnpacked(ctx, "")
		if err != nil || !ok {
			t.Errorf("%s: unpacked = %v, %v", rt, ok, err)
		}
	}

	names, err := List(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range Runtimes {
		if !slices.Contains(names, Name(rt)) {
			t.Errorf("List = %v, missing %s", names, Name(rt))
		}
	}

	// Nothing changed: a second Setup is a quick no-op.
	out2 := &syncBuffer{t: t}
	start := time.Now()
	results, err = Setup(ctx, d, Options{Progress: out2})
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("second Setup: %v", err)
	}
	for _, r := range results {
		if !r.UpToDate {
			t.Errorf("second Setup rebuilt %s", r.Runtime)
		}
		if line := "[OK] " + r.Runtime + ": Up to date\n"; !strings.Contains(out2.String(), line) {
			t.Errorf("progress lacks %q: %q", line, out2.String())
		}
	}
	if elapsed > 5*time.Second {
		t.Errorf("up-to-date Setup took %v, want < 5s", elapsed)
	}
	t.Logf("up-to-date Setup took %v", elapsed)

	// Ensure on an existing image does nothing.
	if err := Ensure(ctx, d, "bash", Options{}); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
}

// TestRemove deletes a managed copy of the bash image (the shared blobs
// stay for the real one) and refuses an image without isol8's label.
func TestRemove(t *testing.T) {
	d, ctx := newDriver(t, ctrd.Namespace)
	c := d.Client()
	is := c.ImageService()
	bash, err := is.Get(ctx, Name("bash"))
	if errdefs.IsNotFound(err) {
		testenv.MustHaveCommand(t, "mmdebstrap")
		if err := Ensure(ctx, d, "bash", Options{}); err != nil {
			t.Fatal(err)
		}
		bash, err = is.Get(ctx, Name("bash"))
	}
	if err != nil {
		t.Fatal(err)
	}
	managed := images.Image{Name: "isol8-test:remove-managed", Target: bash.Target, Labels: map[string]string{LabelManaged: "true"}}
	foreign := images.Image{Name: "isol8-test:remove-foreign", Target: bash.Target}
	for _, img := range []images.Image{managed, foreign} {
		_ = is.Delete(ctx, img.Name)
		if _, err := is.Create(ctx, img); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = is.Delete(context.WithoutCancel(ctx), foreign.Name) })

	if err := Remove(ctx, d, foreign.Name); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("Remove(foreign) = %v, want failed precondition", err)
	}
	if err := Remove(ctx, d, managed.Name); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := is.Get(ctx, managed.Name); !errdefs.IsNotFound(err) {
		t.Fatalf("image still there: %v", err)
	}
	if err := Remove(ctx, d, "isol8-test:absent"); !errdefs.IsNotFound(err) {
		t.Fatalf("Remove(absent) = %v, want not found", err)
	}
	// The real image and its blobs survive.
	ok, err := client.NewImage(c, bash).IsUnpacked(ctx, "")
	if err != nil || !ok {
		t.Fatalf("bash image damaged: unpacked=%v err=%v", ok, err)
	}
}

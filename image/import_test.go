package image

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/isol8/isol8/internal/testenv"
)

// testNamespace keeps this package's throw-away images away from the shared
// runtime images in namespace isol8.
const testNamespace = "isol8-imagetest"

// Setup hands the builder's OCI layout to the containerd driver, which
// imports it (blobs, labelled record, unpacked rootfs); a second Setup reads
// the build hash and base layer through the driver and says "Up to date";
// the base layer's digest is the same when it is made again; Remove deletes
// the image. A tiny base rootfs in a private cache directory stands in for
// the mmdebstrap one, so nothing shared is touched.
func TestSetupImportsLayout(t *testing.T) {
	testenv.MustHaveRoot(t)
	d, ctx := newDriver(t, testNamespace)
	t.Cleanup(func() {
		ctx := context.WithoutCancel(ctx)
		_ = d.RemoveImage(ctx, Name("bash"))
		_ = d.Client().NamespaceService().Delete(ctx, testNamespace)
	})
	cache := t.TempDir()
	b := newBuilder(d, Options{CacheDir: cache})
	root := filepath.Join(b.baseDir(), "rootfs")
	for name, body := range map[string]string{initMountpoint: "", "etc/hostname": "isol8-test\n", "bin/tool": "#!/bin/sh\n"} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	out := &syncBuffer{t: t}
	res, err := Setup(ctx, d, Options{Runtimes: []string{"bash"}, CacheDir: cache, Progress: out})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	if len(res) != 1 || res[0].UpToDate {
		t.Fatalf("results = %+v, want one build", res)
	}
	for _, line := range []string{"- bash: building (missing)\n", "- base: importing cached rootfs", "[OK] bash ("} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("progress lacks %q: %q", line, out.String())
		}
	}
	base, ok := b.cachedBaseLayer()
	if !ok {
		t.Fatal("no base layer recorded in the cache")
	}
	info, err := d.ImageInfo(ctx, Name("bash"))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{LabelManaged: "true", LabelRuntime: "bash", LabelBuildHash: buildHash(defaultBase, defaultRecipes["bash"])} {
		if info.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, info.Labels[k], v)
		}
	}
	if len(info.Layers) != 1 || info.Layers[0] != base.Digest.String() {
		t.Errorf("layers = %v, want the base layer %s", info.Layers, base.Digest)
	}
	img, err := d.Client().GetImage(ctx, Name("bash"))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := img.IsUnpacked(ctx, "overlayfs"); err != nil || !ok {
		t.Errorf("imported image unpacked = %v, %v", ok, err)
	}
	if _, err := os.Stat(filepath.Join(b.workDir(), "bash-layout")); !os.IsNotExist(err) {
		t.Errorf("the build's layout directory was left behind: %v", err)
	}

	out2 := &syncBuffer{t: t}
	start := time.Now()
	res, err = Setup(ctx, d, Options{Runtimes: []string{"bash"}, CacheDir: cache, Progress: out2})
	elapsed := time.Since(start)
	if err != nil || len(res) != 1 || !res[0].UpToDate {
		t.Fatalf("second Setup = %+v, %v; want up to date", res, err)
	}
	if out2.String() != "[OK] bash: Up to date\n" {
		t.Errorf("second Setup printed %q", out2.String())
	}
	if elapsed > 2*time.Second {
		t.Errorf("up-to-date Setup took %v", elapsed)
	}
	t.Logf("up-to-date Setup took %v", elapsed)

	// The same rootfs makes the same layer.
	again, err := b.pushBase(b.baseDir(), root)
	if err != nil {
		t.Fatal(err)
	}
	if again.Digest != base.Digest || again.Size != base.Size {
		t.Errorf("base layer made again: %s (%d), first %s (%d)", again.Digest, again.Size, base.Digest, base.Size)
	}

	if err := Remove(ctx, d, "bash"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := d.ImageInfo(ctx, Name("bash")); !errdefs.IsNotFound(err) {
		t.Fatalf("ImageInfo after Remove = %v, want not found", err)
	}
}

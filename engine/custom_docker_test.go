package engine

import (
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/isol8/isol8/image"
)

// Custom images on the Docker driver, which keeps no compressed layer
// blobs for a layout to refer to: the build exports the base image's
// layers, the image is listed with its recipe, runs its setup script, is
// up to date on a second build, and cleanup's image list names it and
// nothing outside isol8. (Before the driver exported layers, the first
// build failed with "the backend reports no layer descriptors".)
func TestCustomImageDocker(t *testing.T) {
	e := backendDocker.engine(t, Options{})
	tag := uniqueTag(t, "docker")
	removeImageAtEnd(t, e, tag)
	o := BuildOptions{Tag: tag, Runtime: "python", Setup: "echo from-image > /sandbox/marker\necho image-setup-ran"}

	res, err := e.BuildImage(t.Context(), o)
	if err != nil || res.UpToDate {
		t.Fatalf("first build: %+v, %v", res, err)
	}
	t.Logf("build on docker: %v", res.Duration)
	if res, err = e.BuildImage(t.Context(), o); err != nil || !res.UpToDate {
		t.Fatalf("second build: %+v, %v; want up to date", res, err)
	}
	info, err := e.host.drv.ImageInfo(t.Context(), tag)
	if err != nil {
		t.Fatal(err)
	}
	checkSetupOnlyImage(t, e, info, tag, o.Setup)

	// No pool: Docker refuses to remove an image a container (a warm
	// sandbox) still uses, and the test removes the image below.
	ce := backendDocker.engine(t, Options{Image: tag, PoolSize: &PoolSize{}})
	r := run(t, ce, Request{Runtime: "python", SetupScript: "echo request >> /sandbox/marker",
		Code: "print(open('/sandbox/marker').read(), end='')"})
	if r.ExitCode != 0 || r.Stdout != "from-image\nrequest" {
		t.Errorf("run in custom image: exit %d stdout %q stderr %q", r.ExitCode, r.Stdout, r.Stderr)
	}

	// Cleanup with images would remove the custom image and the runtime
	// images (which the other Docker tests of this binary share, so the
	// test lists instead of removing them) and nothing else.
	rep, err := e.Cleanup(t.Context(), CleanupOptions{Images: true, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(rep.Images, tag) {
		t.Errorf("cleanup would not remove %s: %v", tag, rep.Images)
	}
	for _, n := range rep.Images {
		if n != tag && !strings.HasPrefix(n, "isol8:") && !strings.HasPrefix(n, "h-images-test-") {
			t.Errorf("cleanup would remove %s", n)
		}
		if rep.ImageIDs[n] == "" {
			t.Errorf("cleanup reports no id for %s", n)
		}
	}
	// What cleanup does with each listed image: the custom image goes, its
	// base and layers stay.
	if err := image.Remove(t.Context(), e.host.drv, tag); err != nil {
		t.Fatal(err)
	}
	if _, err := e.host.drv.ImageInfo(t.Context(), tag); !errdefs.IsNotFound(err) {
		t.Errorf("%s after removal: %v", tag, err)
	}
	if list, err := e.host.ListCustomImages(t.Context()); err != nil || slices.ContainsFunc(list, func(c CustomImage) bool { return c.Name == tag }) {
		t.Errorf("listed after removal: %+v, %v", list, err)
	}
	if r := run(t, e, Request{Runtime: "python", Code: "print(6*7)"}); r.ExitCode != 0 || strings.TrimSpace(r.Stdout) != "42" {
		t.Errorf("base image after removal: exit %d stdout %q stderr %q", r.ExitCode, r.Stdout, r.Stderr)
	}
}

// A custom python image with a pip install from the test's loopback index
// on the Docker driver: the build sandbox installs into the build
// directory, the package becomes the image's own layer on top of the
// exported base layers, and a request naming the package runs in the
// image with no download.
func TestCustomImagePipDocker(t *testing.T) {
	e := backendDocker.engine(t, Options{})
	tag := uniqueTag(t, "pipdocker")
	dist, pkg, downloads := buildPipImage(t, e, tag)
	info, err := e.host.drv.ImageInfo(t.Context(), tag)
	if err != nil {
		t.Fatal(err)
	}
	base, err := e.host.drv.ImageInfo(t.Context(), image.Name("python"))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Layers) != len(base.Layers)+1 || !slices.Equal(info.Layers[:len(base.Layers)], base.Layers) {
		t.Errorf("layers %v, want the base's %v plus one", info.Layers, base.Layers)
	}
	re := backendDocker.engine(t, Options{PoolSize: &PoolSize{}})
	out := run(t, re, Request{Runtime: "python", InstallPackages: []string{dist},
		Code: "import " + pkg + "\nprint(" + pkg + ".VALUE, " + pkg + ".__file__)"})
	want := "from-index /usr/local/lib/python3.11/dist-packages/" + pkg + "/__init__.py"
	if out.ExitCode != 0 || strings.TrimSpace(out.Stdout) != want {
		t.Errorf("run with the installed package: exit %d stdout %q stderr %q, want %q", out.ExitCode, out.Stdout, out.Stderr, want)
	}
	if downloads() != 1 {
		t.Errorf("wheel downloaded %d times, want 1", downloads())
	}
}

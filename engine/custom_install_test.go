package engine

import (
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/isol8/isol8/image"
	"github.com/isol8/isol8/internal/pkgtest"
	"github.com/isol8/isol8/registry"
)

// buildPipImage builds the custom python image tag with one package from
// a package index the test serves on loopback, through the build's own
// path (a filtered sandbox whose only destination is the configured index,
// trusted as the operator's mirror), then builds it again, which must be
// up to date. It returns the package's distribution and module names and
// the index's download count.
func buildPipImage(t *testing.T, e *Engine, tag string) (dist, pkg string, downloads func() int) {
	t.Helper()
	var b [4]byte
	_, _ = cryptoRead(b[:])
	suffix := hex.EncodeToString(b[:])
	dist, pkg = "h-images-demo-"+suffix, "h_images_demo_"+suffix
	wheel := pkg + "-1.0-py3-none-any.whl"
	index := pkgtest.PyPIIndex(t, dist, wheel, pkgtest.BuildWheel(t, dist, "1.0", pkg, "from-index"))
	downloads = func() int { return index.Asked("/files/" + wheel) }
	removeImageAtEnd(t, e, tag)
	r := image.CustomRecipe{Tag: tag, Runtime: "python", Packages: []string{dist}}
	populate := e.host.buildInstaller(r, &registry.Config{PipIndexURL: index.URL + "/simple"})
	res, err := image.BuildCustom(t.Context(), e.host.drv, r, populate, image.Options{})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	t.Logf("build with pip from a loopback index: %v", res.Duration)
	if res, err = image.BuildCustom(t.Context(), e.host.drv, r, populate, image.Options{}); err != nil || !res.UpToDate {
		t.Errorf("second build: %+v %v, want up to date", res, err)
	}
	t.Logf("build again (up to date): %v", res.Duration)
	return dist, pkg, downloads
}

// A custom python image with a real pip install from the test's own
// package index on loopback: the request's install step runs in the build
// sandbox on the filtered network (the index is its only destination, and
// passes the SSRF guard as the configured mirror), pip's --user
// install lands in the image's dist-packages with its console script, and
// a request naming the package runs in the image with no download.
func TestCustomImagePipFromLoopbackIndex(t *testing.T) {
	e := newTestEngine(t, Options{})
	mustHaveImage(t, e, "python")
	dist, pkg, downloads := buildPipImage(t, e, uniqueTag(t, "pip"))
	if downloads() != 1 {
		t.Errorf("wheel downloaded %d times, want 1", downloads())
	}
	out := run(t, e, Request{Runtime: "python", InstallPackages: []string{dist},
		Code: "import " + pkg + ", subprocess, shutil\nprint(" + pkg + ".VALUE, " + pkg + ".__file__)\n" +
			"print(shutil.which('" + dist + "'), subprocess.run(['" + dist + "'], capture_output=True, text=True).stdout.strip())"})
	want := "from-index /usr/local/lib/python3.11/dist-packages/" + pkg + "/__init__.py\n/usr/local/bin/" + dist + " tool from-index"
	if out.ExitCode != 0 || out.Stdout != want {
		t.Errorf("run with the installed package: exit %d stdout %q stderr %q, want %q", out.ExitCode, out.Stdout, out.Stderr, want)
	}
	if downloads() != 1 {
		t.Errorf("the run downloaded again (%d)", downloads())
	}
}

func cryptoRead(b []byte) (int, error) { return rand.Read(b) }

// The same for node: a real `npm install` from a registry on loopback in
// the build sandbox lands in /usr/local/lib/node_modules, where require()
// finds it (NODE_PATH) with no install at run time.
func TestCustomImageNPMFromLoopbackRegistry(t *testing.T) {
	e := newTestEngine(t, Options{})
	mustHaveImage(t, e, "node")
	var b [4]byte
	_, _ = cryptoRead(b[:])
	name := "h-images-npm-" + hex.EncodeToString(b[:])
	reg := pkgtest.NpmRegistry(t, name, "1.0.0", pkgtest.NpmTarball(t, name, "1.0.0", "from-registry"))
	tag := uniqueTag(t, "npm")
	removeImageAtEnd(t, e, tag)
	r := image.CustomRecipe{Tag: tag, Runtime: "node", Packages: []string{name}}
	populate := e.host.buildInstaller(r, &registry.Config{NpmRegistry: reg.URL + "/"})
	res, err := image.BuildCustom(t.Context(), e.host.drv, r, populate, image.Options{})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	t.Logf("build with npm from a loopback registry: %v", res.Duration)
	out := run(t, e, Request{Runtime: "node", InstallPackages: []string{name},
		Code: "const m = require('" + name + "'); console.log(m, require.resolve('" + name + "'))"})
	want := "from-registry /usr/local/lib/node_modules/" + name + "/index.js"
	if out.ExitCode != 0 || out.Stdout != want {
		t.Errorf("run with the installed package: exit %d stdout %q stderr %q, want %q", out.ExitCode, out.Stdout, out.Stderr, want)
	}
}

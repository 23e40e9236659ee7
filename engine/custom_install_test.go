package engine

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/isol8/isol8/image"
	"github.com/isol8/isol8/registry"
)

// pureWheel is a pure-Python wheel of package pkg (distribution name dist)
// with a module setting VALUE and a console script printing it.
func pureWheel(t *testing.T, dist, pkg, version, value string) (name string, data []byte) {
	t.Helper()
	info := pkg + "-" + version + ".dist-info"
	files := []struct{ name, body string }{
		{pkg + "/__init__.py", "VALUE = " + fmt.Sprintf("%q", value) + "\n\ndef main():\n    print('tool', VALUE)\n"},
		{info + "/METADATA", "Metadata-Version: 2.1\nName: " + dist + "\nVersion: " + version + "\n"},
		{info + "/WHEEL", "Wheel-Version: 1.0\nGenerator: isol8-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
		{info + "/entry_points.txt", "[console_scripts]\n" + dist + " = " + pkg + ":main\n"},
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	var record strings.Builder
	for _, f := range files {
		w, err := zw.Create(f.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(f.body))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", f.name, base64.RawURLEncoding.EncodeToString(sum[:]), len(f.body))
	}
	record.WriteString(info + "/RECORD,,\n")
	w, err := zw.Create(info + "/RECORD")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(record.String())); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return pkg + "-" + version + "-py3-none-any.whl", buf.Bytes()
}

// startPackageIndex serves a PEP 503 simple index on loopback holding one
// wheel, and counts downloads.
func startPackageIndex(t *testing.T, dist, wheel string, data []byte) (url string, downloads func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	n := 0
	sum := sha256.Sum256(data)
	mux := http.NewServeMux()
	mux.HandleFunc("/simple/"+dist+"/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<html><body><a href="/files/%s#sha256=%s">%s</a></body></html>`, wheel, hex.EncodeToString(sum[:]), wheel)
	})
	mux.HandleFunc("/files/"+wheel, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		w.Write(data)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/simple", func() int { mu.Lock(); defer mu.Unlock(); return n }
}

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
	wheel, data := pureWheel(t, dist, pkg, "1.0", "from-index")
	index, downloads := startPackageIndex(t, dist, wheel, data)
	removeImageAtEnd(t, e, tag)
	r := image.CustomRecipe{Tag: tag, Runtime: "python", Packages: []string{dist}}
	populate := e.host.buildInstaller(r, &registry.Config{PipIndexURL: index})
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

// npmTarball is an npm package tarball (package/package.json, index.js).
func npmTarball(t *testing.T, name, version, value string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range []struct{ name, body string }{
		{"package/package.json", `{"name":"` + name + `","version":"` + version + `","main":"index.js"}`},
		{"package/index.js", "module.exports = { value: " + fmt.Sprintf("%q", value) + " };\n"},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// startNPMRegistry serves one package's packument and tarball on loopback.
func startNPMRegistry(t *testing.T, name, version string, tgz []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	sum := sha512.Sum512(tgz)
	integrity := "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
	mux := http.NewServeMux()
	mux.HandleFunc("/"+name, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"name":%q,"dist-tags":{"latest":%q},"versions":{%q:{"name":%q,"version":%q,"dist":{"tarball":"%s/%s/-/%s-%s.tgz","integrity":%q}}}}`,
			name, version, version, name, version, base, name, name, version, integrity)
	})
	mux.HandleFunc("/"+name+"/-/"+name+"-"+version+".tgz", func(w http.ResponseWriter, r *http.Request) { w.Write(tgz) })
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return base + "/"
}

// The same for node: a real `npm install` from a registry on loopback in
// the build sandbox lands in /usr/local/lib/node_modules, where require()
// finds it (NODE_PATH) with no install at run time.
func TestCustomImageNPMFromLoopbackRegistry(t *testing.T) {
	e := newTestEngine(t, Options{})
	mustHaveImage(t, e, "node")
	var b [4]byte
	_, _ = cryptoRead(b[:])
	name := "h-images-npm-" + hex.EncodeToString(b[:])
	regURL := startNPMRegistry(t, name, "1.0.0", npmTarball(t, name, "1.0.0", "from-registry"))
	tag := uniqueTag(t, "npm")
	removeImageAtEnd(t, e, tag)
	r := image.CustomRecipe{Tag: tag, Runtime: "node", Packages: []string{name}}
	populate := e.host.buildInstaller(r, &registry.Config{NpmRegistry: regURL})
	res, err := image.BuildCustom(t.Context(), e.host.drv, r, populate, image.Options{})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	t.Logf("build with npm from a loopback registry: %v", res.Duration)
	out := run(t, e, Request{Runtime: "node", InstallPackages: []string{name},
		Code: "const m = require('" + name + "'); console.log(m.value, require.resolve('" + name + "'))"})
	want := "from-registry /usr/local/lib/node_modules/" + name + "/index.js"
	if out.ExitCode != 0 || out.Stdout != want {
		t.Errorf("run with the installed package: exit %d stdout %q stderr %q, want %q", out.ExitCode, out.Stdout, out.Stderr, want)
	}
}

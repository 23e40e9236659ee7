// Package pkgtest serves package registries for tests, on 127.0.0.1 with a
// port the kernel picks, stopped when the test ends: a PEP 503 "simple"
// index with a wheel it builds, an npm registry with a tarball it packs, a
// flat Debian repository it builds with dpkg-deb and apt-ftparchive, and
// an HTTP forward proxy. Each server records the paths it was asked for.
package pkgtest

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a test server; Start serves h on a loopback port picked by the kernel and records
// the paths it was asked for.
type Server struct {
	URL string
	mu  sync.Mutex
	hit []string
}

func Start(t *testing.T, h http.Handler) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{URL: "http://" + ln.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hit = append(s.hit, r.URL.Path)
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *Server) Hits() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.hit...)
}

func (s *Server) WasAsked(path string) bool { return s.Asked(path) > 0 }

// Asked counts the requests for path.
func (s *Server) Asked(path string) int {
	n := 0
	for _, h := range s.Hits() {
		if h == path {
			n++
		}
	}
	return n
}

// BuildWheel makes a pure-Python wheel of one module whose VALUE is value
// and whose main() prints "tool <value>", installed as the console script
// named dist: a zip with the module, and dist-info METADATA, WHEEL,
// entry_points.txt and RECORD (each file's urlsafe-base64 sha256 and size).
func BuildWheel(t *testing.T, dist, version, module, value string) []byte {
	t.Helper()
	// The dist-info directory carries the escaped name (wheel spec).
	info := strings.ReplaceAll(dist, "-", "_") + "-" + version + ".dist-info"
	files := []struct{ name, body string }{
		{module + "/__init__.py", fmt.Sprintf("VALUE = %q\n\ndef main():\n    print('tool', VALUE)\n", value)},
		{info + "/METADATA", "Metadata-Version: 2.1\nName: " + dist + "\nVersion: " + version + "\n"},
		{info + "/WHEEL", "Wheel-Version: 1.0\nGenerator: isol8-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
		{info + "/entry_points.txt", "[console_scripts]\n" + dist + " = " + module + ":main\n"},
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	var record strings.Builder
	for _, f := range files {
		w, err := zw.Create(f.name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(f.body))
		sum := sha256.Sum256([]byte(f.body))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", f.name, base64.RawURLEncoding.EncodeToString(sum[:]), len(f.body))
	}
	record.WriteString(info + "/RECORD,,\n")
	w, err := zw.Create(info + "/RECORD")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(record.String()))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// PyPIIndex serves a PEP 503 "simple" index with one project whose only
// file is wheel.
func PyPIIndex(t *testing.T, project, wheelName string, wheel []byte) *Server {
	sum := sha256.Sum256(wheel)
	mux := http.NewServeMux()
	mux.HandleFunc("/simple/", func(w http.ResponseWriter, r *http.Request) {
		switch strings.Trim(strings.TrimPrefix(r.URL.Path, "/simple/"), "/") {
		case "":
			fmt.Fprintf(w, "<html><body><a href=\"/simple/%s/\">%s</a></body></html>", project, project)
		case project:
			fmt.Fprintf(w, "<html><body><a href=\"/files/%s#sha256=%s\">%s</a></body></html>",
				wheelName, hex.EncodeToString(sum[:]), wheelName)
		default:
			http.NotFound(w, r)
		}
	})
	mux.HandleFunc("/files/"+wheelName, func(w http.ResponseWriter, r *http.Request) { w.Write(wheel) })
	return Start(t, mux)
}

// NpmTarball packs package/package.json and package/index.js, a CommonJS
// module exporting value.
func NpmTarball(t *testing.T, name, version, value string) []byte {
	t.Helper()
	pkg, _ := json.Marshal(map[string]string{"name": name, "version": version, "main": "index.js"})
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range []struct{ name, body string }{
		{"package/package.json", string(pkg)},
		{"package/index.js", fmt.Sprintf("module.exports = %q;\n", value)},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), ModTime: time.Unix(1700000000, 0), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(f.body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// NpmRegistry serves one package version: its registry document (with the
// tarball's sha1 shasum and sha512 integrity) and the tarball.
func NpmRegistry(t *testing.T, name, version string, tgz []byte) *Server {
	var srv *Server
	tarPath := "/" + name + "/-/" + name + "-" + version + ".tgz"
	sha := sha1.Sum(tgz)
	sha5 := sha512.Sum512(tgz)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case tarPath:
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(tgz)
		case "/" + name:
			doc := map[string]any{
				"name":      name,
				"dist-tags": map[string]string{"latest": version},
				"modified":  "2024-01-01T00:00:00.000Z",
				"versions": map[string]any{version: map[string]any{
					"name": name, "version": version, "main": "index.js",
					"dist": map[string]string{
						"tarball":   baseURL(srv, r) + tarPath,
						"shasum":    hex.EncodeToString(sha[:]),
						"integrity": "sha512-" + base64.StdEncoding.EncodeToString(sha5[:]),
					},
				}},
				"time": map[string]string{version: "2024-01-01T00:00:00.000Z", "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z"},
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(doc)
		default:
			http.NotFound(w, r)
		}
	})
	srv = Start(t, mux)
	return srv
}

// baseURL is the server's URL as the client addressed it: through a
// forward proxy that is the registry's public name, not the loopback port.
func baseURL(srv *Server, r *http.Request) string {
	if r.Host != "" && !strings.HasPrefix(r.Host, "127.0.0.1:") {
		return "http://" + r.Host
	}
	return srv.URL
}

// debPackage builds a .deb with dpkg-deb from files (path in the package
// to content; executables end in "bin/...").
func debPackage(t *testing.T, dir, name, version, depends string, files map[string]string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), name)
	control := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: isol8 tests <t@example.invalid>\nDescription: isol8 test package\n", name, version)
	if depends != "" {
		control += "Depends: " + depends + "\n"
	}
	files["DEBIAN/control"] = control
	for p, body := range files {
		mode := os.FileMode(0o644)
		if strings.Contains(p, "bin/") {
			mode = 0o755
		}
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.CommandContext(t.Context(), "dpkg-deb", "--root-owner-group", "-Zgzip", "--build", root,
		filepath.Join(dir, name+"_"+version+"_all.deb")).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb: %v: %s", err, out)
	}
}

// DebRepo builds a flat Debian repository (Packages, Release) of two
// packages, isol8-probe depending on isol8-probe-data, with apt-ftparchive,
// and serves it.
func DebRepo(t *testing.T) *Server {
	t.Helper()
	for _, tool := range []string{"dpkg-deb", "apt-ftparchive"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (scripts/install-deps.sh installs it)", tool)
		}
	}
	dir := t.TempDir()
	debPackage(t, dir, "isol8-probe", "1.0", "isol8-probe-data (>= 1.0), bash", map[string]string{
		"usr/bin/isol8-probe": "#!/bin/sh\nprintf 'deb-ok %s\\n' \"$(cat \"$(dirname \"$0\")/../share/isol8-probe-data/value\")\"\n",
	})
	debPackage(t, dir, "isol8-probe-data", "1.0", "", map[string]string{"usr/share/isol8-probe-data/value": "data-ok"})
	for _, c := range []struct {
		args []string
		out  string
	}{
		{[]string{"packages", "."}, "Packages"},
		{[]string{"release", "."}, "Release"},
	} {
		cmd := exec.CommandContext(t.Context(), "apt-ftparchive", c.args...)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("apt-ftparchive %v: %v", c.args, err)
		}
		if err := os.WriteFile(filepath.Join(dir, c.out), out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return Start(t, http.FileServer(http.Dir(dir)))
}

// ForwardProxy is an HTTP forward proxy (absolute-URI requests only, like
// plain-HTTP registries need) that sends every request to backend whatever
// host it names, and records the hosts asked for.
func ForwardProxy(t *testing.T, backend *Server) *Server {
	target, err := url.Parse(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = pr.In.Host // the registry sees the name the client used
	}}
	return Start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !r.URL.IsAbs() {
			http.Error(w, "not a proxy request", http.StatusBadRequest)
			return
		}
		rp.ServeHTTP(w, r)
	}))
}

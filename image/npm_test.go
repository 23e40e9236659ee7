package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

func integrityOf(b []byte) string {
	sum := sha512.Sum512(b)
	return "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
}

// fakeTgz builds an npm-style tarball.
func fakeTgz(t *testing.T, files map[string]string, modes map[string]int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		mode := int64(0o644)
		if m, ok := modes[name]; ok {
			mode = m
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(files[name])), ModTime: npmEpoch, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, files[name])
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func TestVerifyIntegrity(t *testing.T) {
	good := []byte("the real tarball")
	pin := integrityOf(good)
	tampered := append(bytes.Clone(good), '!')
	tests := []struct {
		name      string
		data      []byte
		integrity string
		wantErr   error
	}{
		{"matches", good, pin, nil},
		{"tampered", tampered, pin, errIntegrity},
		{"truncated", good[:5], pin, errIntegrity},
		{"empty", nil, pin, errIntegrity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verifyIntegrity(bytes.NewReader(tt.data), tt.integrity)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("verifyIntegrity = %v, want %v", err, tt.wantErr)
			}
		})
	}
	for _, bad := range []string{"", "sha512", "sha512-!!!", "md5-" + base64.StdEncoding.EncodeToString(make([]byte, 16)), "sha512-" + base64.StdEncoding.EncodeToString(make([]byte, 32))} {
		if err := verifyIntegrity(bytes.NewReader(good), bad); err == nil {
			t.Errorf("integrity %q accepted", bad)
		}
	}
}

// TestFetchRejectsTamperedTarball serves a tampered tarball on loopback:
// the fetch fails and nothing is cached; the genuine one is cached and not
// downloaded again.
func TestFetchRejectsTamperedTarball(t *testing.T) {
	genuine := fakeTgz(t, map[string]string{"package/bin/tool": "#!/bin/sh\n"}, nil)
	pkg := npmPackage{Name: "@scope/tool", Version: "1.2.3", Integrity: integrityOf(genuine)}
	var serve atomic.Value
	serve.Store(append(bytes.Clone(genuine), 0))
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path != "/@scope/tool/-/tool-1.2.3.tgz" {
			http.NotFound(w, r)
			return
		}
		w.Write(serve.Load().([]byte))
	}))
	defer srv.Close()

	dir := t.TempDir()
	f := newNPMFetcher(dir, srv.URL+"/")
	if _, err := f.fetch(t.Context(), pkg); !errors.Is(err, errIntegrity) {
		t.Fatalf("fetch of tampered tarball = %v, want integrity error", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("tampered download left files: %v", entries)
	}

	serve.Store(genuine)
	p, err := f.fetch(t.Context(), pkg)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, genuine) {
		t.Fatal("cached tarball differs from the genuine one")
	}
	before := hits.Load()
	if _, err := f.fetch(t.Context(), pkg); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != before {
		t.Fatal("second fetch downloaded again instead of using the cache")
	}

	// A cached file tampered with on disk is replaced by a fresh download.
	if err := os.WriteFile(p, []byte("evil"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.fetch(t.Context(), pkg); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, genuine) {
		t.Fatal("tampered cache entry was not replaced")
	}
}

func TestResolveRegistry(t *testing.T) {
	npmSays := func(v string, err error) func() (string, error) {
		return func() (string, error) { return v, err }
	}
	tests := []struct {
		name string
		env  map[string]string
		npm  func() (string, error)
		want string
	}{
		{"upper-case env wins", map[string]string{"NPM_CONFIG_REGISTRY": "https://a.example/", "npm_config_registry": "https://b.example/"}, npmSays("https://c.example/\n", nil), "https://a.example/"},
		{"lower-case env next", map[string]string{"npm_config_registry": "https://b.example"}, npmSays("https://c.example/\n", nil), "https://b.example/"},
		{"npm config next", nil, npmSays("https://c.example/npm/\n", nil), "https://c.example/npm/"},
		{"npm config without slash", nil, npmSays("http://c.example:4873", nil), "http://c.example:4873/"},
		{"npm missing", nil, npmSays("", errors.New("no npm")), defaultNPMRegistry},
		{"npm undefined", nil, npmSays("undefined\n", nil), defaultNPMRegistry},
		{"nil npm", nil, nil, defaultNPMRegistry},
		{"non-url env ignored", map[string]string{"NPM_CONFIG_REGISTRY": "file:///x"}, npmSays("https://c.example/", nil), "https://c.example/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := resolveRegistry(func(k string) string { return tt.env[k] }, tt.npm)
			if got != tt.want {
				t.Fatalf("resolveRegistry = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTarballURL(t *testing.T) {
	for _, tt := range []struct {
		reg  string
		pkg  npmPackage
		want string
	}{
		{"https://registry.npmjs.org/", pkgNPM, "https://registry.npmjs.org/npm/-/npm-10.9.9.tgz"},
		{"https://r.example/npm", pkgBun, "https://r.example/npm/@oven/bun-linux-x64/-/bun-linux-x64-1.4.5.tgz"},
		{"https://r.example/", pkgDeno, "https://r.example/@deno/linux-x64-glibc/-/linux-x64-glibc-2.9.6.tgz"},
	} {
		if got := tarballURL(tt.reg, tt.pkg); got != tt.want {
			t.Errorf("tarballURL(%q, %s) = %q, want %q", tt.reg, tt.pkg, got, tt.want)
		}
	}
}

func readLayer(t *testing.T, b []byte) map[string]*tar.Header {
	t.Helper()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := out[h.Name]; dup {
			t.Fatalf("duplicate entry %s", h.Name)
		}
		out[h.Name] = h
	}
}

func TestWriteNPMLayer(t *testing.T) {
	dir := t.TempDir()
	bin := fakeTgz(t, map[string]string{"package/bin/tool": "ELF", "package/README.md": "hi"}, map[string]int64{"package/bin/tool": 0o644})
	lib := fakeTgz(t, map[string]string{"package/bin/cli.js": "#!/usr/bin/env node\n", "package/lib/a.js": "x", "package/package.json": "{}"}, map[string]int64{"package/bin/cli.js": 0o755})
	os.WriteFile(filepath.Join(dir, "bin.tgz"), bin, 0o644)
	os.WriteFile(filepath.Join(dir, "lib.tgz"), lib, 0o644)
	pBin := npmPackage{Name: "tool-bin", Version: "1.0.0"}
	pLib := npmPackage{Name: "tool-lib", Version: "1.0.0"}
	r := recipe{
		Runtime: "tool",
		NPM: []npmInstall{
			{Package: pBin, Files: []npmFile{{From: "bin/tool", Dest: "usr/local/bin/tool"}}},
			{Package: pLib, Tree: "usr/local/lib/node_modules/tool"},
		},
		Symlinks: []symlink{{Path: "usr/local/bin/toolx", Target: "../lib/node_modules/tool/bin/cli.js"}},
	}
	paths := func(p npmPackage) string {
		if p == pBin {
			return filepath.Join(dir, "bin.tgz")
		}
		return filepath.Join(dir, "lib.tgz")
	}
	var a, b bytes.Buffer
	if err := writeNPMLayer(&a, r, paths); err != nil {
		t.Fatal(err)
	}
	if err := writeNPMLayer(&b, r, paths); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("npm layer is not reproducible")
	}
	got := readLayer(t, a.Bytes())
	want := map[string]int64{
		"usr/": 0o755, "usr/local/": 0o755, "usr/local/bin/": 0o755,
		"usr/local/bin/tool":                           0o755, // forced executable
		"usr/local/lib/":                               0o755,
		"usr/local/lib/node_modules/":                  0o755,
		"usr/local/lib/node_modules/tool/":             0o755,
		"usr/local/lib/node_modules/tool/bin/":         0o755,
		"usr/local/lib/node_modules/tool/bin/cli.js":   0o755,
		"usr/local/lib/node_modules/tool/lib/":         0o755,
		"usr/local/lib/node_modules/tool/lib/a.js":     0o644,
		"usr/local/lib/node_modules/tool/package.json": 0o644,
		"usr/local/bin/toolx":                          0o777,
	}
	for name, mode := range want {
		h, ok := got[name]
		if !ok {
			t.Errorf("missing %s", name)
			continue
		}
		if h.Mode != mode || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: mode %o uid %d gid %d, want %o 0 0", name, h.Mode, h.Uid, h.Gid, mode)
		}
	}
	if len(got) != len(want) {
		t.Errorf("layer has %d entries, want %d: %v", len(got), len(want), got)
	}
	if h := got["usr/local/bin/toolx"]; h != nil && (h.Typeflag != tar.TypeSymlink || h.Linkname != "../lib/node_modules/tool/bin/cli.js") {
		t.Errorf("toolx: %+v", h)
	}

	// A pinned file missing from the package is an error.
	r.NPM[0].Files[0].From = "bin/other"
	if err := writeNPMLayer(io.Discard, r, paths); err == nil || !strings.Contains(err.Error(), "bin/other") {
		t.Fatalf("missing file: err = %v", err)
	}
}

func TestWriteNPMLayerRejectsEscapes(t *testing.T) {
	dir := t.TempDir()
	evil := fakeTgz(t, map[string]string{"package/../../etc/passwd": "x"}, nil)
	os.WriteFile(filepath.Join(dir, "evil.tgz"), evil, 0o644)
	r := recipe{NPM: []npmInstall{{Package: npmPackage{Name: "evil"}, Tree: "usr/local/lib/evil"}}}
	err := writeNPMLayer(io.Discard, r, func(npmPackage) string { return filepath.Join(dir, "evil.tgz") })
	if err == nil || !strings.Contains(err.Error(), "unsafe path") {
		t.Fatalf("err = %v, want unsafe path", err)
	}
}

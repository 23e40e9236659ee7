package docker

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// savedArchive builds a docker-archive the way Docker 20.10 saves one:
// layer directories first, a repeated layer as a link to its first copy,
// manifest.json last.
func savedArchive(t *testing.T, manifest string, files map[string]string, links map[string]string, order []string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range order {
		if target, ok := links[name]; ok {
			if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := writeTarFile(tw, name, []byte(files[name])); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeTarFile(tw, "manifest.json", []byte(manifest)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The layers come back in manifest order with their sha256 as digest, a
// linked repeat resolves to its first copy, and nothing but the layers is
// left in the layout.
func TestExportArchiveLayers(t *testing.T) {
	files := map[string]string{"a/layer.tar": "layer-a", "b/layer.tar": "layer-b", "a/json": "{}", "cfg.json": "{}"}
	links := map[string]string{"c/layer.tar": "../a/layer.tar"}
	raw := savedArchive(t, `[{"Config":"cfg.json","RepoTags":["x:y"],"Layers":["b/layer.tar","a/layer.tar","c/layer.tar"]}]`,
		files, links, []string{"a/json", "a/layer.tar", "b/layer.tar", "c/layer.tar", "cfg.json"})
	dir := t.TempDir()
	descs, err := exportArchiveLayers(bytes.NewReader(raw), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"layer-b", "layer-a", "layer-a"}
	if len(descs) != len(want) {
		t.Fatalf("descs %+v", descs)
	}
	for i, d := range descs {
		if d.Digest != digest.FromString(want[i]) || d.Size != int64(len(want[i])) || d.MediaType != "application/vnd.oci.image.layer.v1.tar" {
			t.Errorf("layer %d: %+v, want the blob of %q", i, d, want[i])
		}
		got, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", d.Digest.Encoded()))
		if err != nil || string(got) != want[i] {
			t.Errorf("blob of layer %d: %q, %v", i, got, err)
		}
	}
	left, _ := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if len(left) != 2 {
		t.Errorf("layout holds %d blobs, want 2", len(left))
	}
}

// Hostile or broken archives fail with a clear error and leave no blobs.
func TestExportArchiveLayersRefusals(t *testing.T) {
	for name, tc := range map[string]struct {
		manifest string
		links    map[string]string
		want     string
	}{
		"missing layer": {`[{"Layers":["z/layer.tar"]}]`, nil, "layer z/layer.tar missing"},
		"two images":    {`[{"Layers":[]},{"Layers":[]}]`, nil, "lists 2 images"},
		"link loop":     {`[{"Layers":["c/layer.tar"]}]`, map[string]string{"c/layer.tar": "../d/layer.tar", "d/layer.tar": "../c/layer.tar"}, "too many links"},
		"bad json":      {`{`, nil, "manifest.json"},
	} {
		order := []string{"a/layer.tar", "c/layer.tar", "d/layer.tar"}
		if tc.links == nil {
			order = order[:1]
		}
		raw := savedArchive(t, tc.manifest, map[string]string{"a/layer.tar": "layer-a"}, tc.links, order)
		dir := t.TempDir()
		_, err := exportArchiveLayers(bytes.NewReader(raw), dir)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
		if left, _ := os.ReadDir(filepath.Join(dir, "blobs", "sha256")); len(left) != 0 {
			t.Errorf("%s: %d blobs left", name, len(left))
		}
	}
}

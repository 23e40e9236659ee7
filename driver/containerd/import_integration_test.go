package containerd

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/isol8/isol8/internal/testenv"
)

// writeTestLayout writes a one-layer layout whose layer file holds onDisk
// while the descriptors claim the digest and size of claimed.
func writeTestLayout(t *testing.T, claimed, onDisk []byte) string {
	t.Helper()
	dir := t.TempDir()
	put := func(d digest.Digest, b []byte) {
		p := filepath.Join(dir, "blobs", "sha256", d.Encoded())
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	putJSON := func(mt string, v any) ocispec.Descriptor {
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
		put(d.Digest, raw)
		return d
	}
	layer := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(claimed), Size: int64(len(claimed))}
	put(layer.Digest, onDisk)
	cfg := putJSON(ocispec.MediaTypeImageConfig, ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.Digest}},
	})
	mf := putJSON(ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: cfg, Layers: []ocispec.Descriptor{layer},
	})
	idx, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, Manifests: []ocispec.Descriptor{mf}})
	if err := os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A layout whose layer bytes do not match their digest is refused by the
// real content store, and no image record is made.
func TestImportImageRefusesTamperedLayer(t *testing.T) {
	addr := testenv.MustHaveContainerd(t)
	const ns = "isol8-drivertest"
	d, err := New(t.Context(), Config{Address: addr, Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.WithoutCancel(t.Context())
		_ = d.RemoveImage(ctx, "isol8-test:tampered")
		_ = d.client.NamespaceService().Delete(d.withNS(ctx), ns)
		d.Close()
	})
	// An empty tar is two 512-byte zero blocks; the file on disk differs.
	emptyTar := make([]byte, 1024)
	tampered := append([]byte{1}, emptyTar[1:]...)
	dir := writeTestLayout(t, emptyTar, tampered)
	if err := d.ImportImage(t.Context(), dir, "isol8-test:tampered", map[string]string{"isol8.managed": "true"}); err == nil {
		t.Fatal("ImportImage accepted a layer whose bytes do not match its digest")
	}
	if _, err := d.ImageInfo(t.Context(), "isol8-test:tampered"); !errdefs.IsNotFound(err) {
		t.Fatalf("ImageInfo after a refused import = %v, want not found", err)
	}
	// The honest layout imports, with its labels, and lists.
	dir = writeTestLayout(t, emptyTar, emptyTar)
	if err := d.ImportImage(t.Context(), dir, "isol8-test:tampered", map[string]string{"isol8.managed": "true"}); err != nil {
		t.Fatalf("ImportImage: %v", err)
	}
	info, err := d.ImageInfo(t.Context(), "isol8-test:tampered")
	if err != nil || info.Labels["isol8.managed"] != "true" || len(info.Layers) != 1 || info.Layers[0] != digest.FromBytes(emptyTar).String() {
		t.Fatalf("ImageInfo = %+v, %v", info, err)
	}
	names, err := d.ListImages(t.Context(), map[string]string{"isol8.managed": "true"})
	if err != nil || len(names) != 1 || names[0] != "isol8-test:tampered" {
		t.Fatalf("ListImages = %v, %v", names, err)
	}
}

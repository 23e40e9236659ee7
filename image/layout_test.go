package image

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// readBlob reads a layout blob by descriptor the way any reader of the
// format would, and checks digest and size against the file's bytes.
func readBlob(t *testing.T, dir string, d ocispec.Descriptor) []byte {
	t.Helper()
	alg, hexd, ok := strings.Cut(string(d.Digest), ":")
	if !ok || alg != "sha256" {
		t.Fatalf("digest %q is not sha256", d.Digest)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "blobs", alg, hexd))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	if hex.EncodeToString(sum[:]) != hexd {
		t.Errorf("blob %s holds bytes with digest sha256:%x", d.Digest, sum)
	}
	if int64(len(raw)) != d.Size {
		t.Errorf("blob %s: %d bytes, descriptor says %d", d.Digest, len(raw), d.Size)
	}
	return raw
}

// The builder's layout is a complete OCI image layout: oci-layout,
// index.json naming the manifest, manifest, config and layers with the
// digests and sizes of their bytes, the config's diff IDs equal to the
// (uncompressed) layers' digests. Read back with nothing but the standard
// library and the spec's types.
func TestLayoutReadBack(t *testing.T) {
	dir := t.TempDir()
	lay, err := newLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	// One layer through writeBlob, one added from a file (the cached base).
	baseFile := filepath.Join(t.TempDir(), "base.tar")
	if err := os.WriteFile(baseFile, []byte("base layer bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	scratch, err := newLayout(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	baseDesc, err := scratch.writeBlob(ocispec.MediaTypeImageLayer, func(w io.Writer) error {
		_, err := w.Write([]byte("base layer bytes"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := lay.linkBlob(baseDesc, baseFile); err != nil {
		t.Fatal(err)
	}
	top, err := lay.writeBlob(ocispec.MediaTypeImageLayer, func(w io.Writer) error {
		_, err := io.WriteString(w, strings.Repeat("runtime layer ", 100000))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	layers := []ocispec.Descriptor{baseDesc, top}
	mfDesc, err := lay.writeImage("isol8:test", imageConfig(defaultBase, layers), layers)
	if err != nil {
		t.Fatal(err)
	}

	var marker ocispec.ImageLayout
	raw, err := os.ReadFile(filepath.Join(dir, "oci-layout"))
	if err != nil || json.Unmarshal(raw, &marker) != nil || marker.Version != "1.0.0" {
		t.Fatalf("oci-layout = %q, %v", raw, err)
	}
	var idx ocispec.Index
	raw, err = os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil || json.Unmarshal(raw, &idx) != nil {
		t.Fatalf("index.json = %q, %v", raw, err)
	}
	if idx.SchemaVersion != 2 || len(idx.Manifests) != 1 {
		t.Fatalf("index = %+v", idx)
	}
	m := idx.Manifests[0]
	if m.MediaType != ocispec.MediaTypeImageManifest || m.Annotations[ocispec.AnnotationRefName] != "isol8:test" || m.Digest != mfDesc.Digest {
		t.Fatalf("index entry = %+v", m)
	}
	var mf ocispec.Manifest
	if err := json.Unmarshal(readBlob(t, dir, m), &mf); err != nil {
		t.Fatal(err)
	}
	if mf.SchemaVersion != 2 || mf.Config.MediaType != ocispec.MediaTypeImageConfig || len(mf.Layers) != 2 {
		t.Fatalf("manifest = %+v", mf)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(readBlob(t, dir, mf.Config), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.RootFS.Type != "layers" || len(cfg.RootFS.DiffIDs) != 2 {
		t.Fatalf("config = %+v", cfg)
	}
	for i, l := range mf.Layers {
		if l.MediaType != ocispec.MediaTypeImageLayer {
			t.Errorf("layer %d media type %s", i, l.MediaType)
		}
		readBlob(t, dir, l)
		if cfg.RootFS.DiffIDs[i] != l.Digest {
			t.Errorf("layer %d: diff ID %s, blob %s", i, cfg.RootFS.DiffIDs[i], l.Digest)
		}
	}
	if string(readBlob(t, dir, mf.Layers[0])) != "base layer bytes" {
		t.Error("base layer content changed on the way in")
	}
	// Nothing but the blobs and the two metadata files.
	entries, _ := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if len(entries) != 4 {
		t.Errorf("blobs/sha256 holds %d entries, want 4 (2 layers, config, manifest)", len(entries))
	}
}

// A cached blob file whose size does not match its descriptor (truncated
// or replaced) is refused.
func TestLayoutLinkBlobMismatch(t *testing.T) {
	lay, err := newLayout(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	want, err := lay.writeBlob(ocispec.MediaTypeImageLayer, func(w io.Writer) error {
		_, err := io.WriteString(w, "expected")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	lay2, err := newLayout(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(bad, []byte("truncat"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := lay2.linkBlob(want, bad); err == nil || !strings.Contains(err.Error(), "holds 7 bytes, want 8") {
		t.Fatalf("linkBlob of a truncated file = %v, want a size error", err)
	}
	if _, err := os.Stat(lay2.blobPath(want.Digest)); !os.IsNotExist(err) {
		t.Fatalf("a refused blob landed in the layout: %v", err)
	}
}

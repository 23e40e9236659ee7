package ocilayout

import (
	_ "crypto/sha512" // the hostile-digest cases name sha512 digests
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Descriptors come from a layout on disk: a digest that is not a clean
// sha256 must never become a path.
func TestBlobPathRefusesHostileDigests(t *testing.T) {
	good := digest.FromString("x")
	for _, tc := range []struct {
		name string
		desc ocispec.Descriptor
	}{
		{"traversal", ocispec.Descriptor{Digest: "sha256:../../../etc/passwd"}},
		{"slash", ocispec.Descriptor{Digest: digest.Digest("sha256:" + strings.Repeat("a", 60) + "/../b")}},
		{"empty", ocispec.Descriptor{}},
		{"other algorithm", ocispec.Descriptor{Digest: digest.SHA512.FromString("x")}},
		{"negative size", ocispec.Descriptor{Digest: good, Size: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if p, err := BlobPath("/layout", tc.desc); !errdefs.IsInvalidArgument(err) {
				t.Fatalf("BlobPath = %q, %v; want an invalid-argument error", p, err)
			}
		})
	}
	p, err := BlobPath("/layout", ocispec.Descriptor{Digest: good, Size: 1})
	if err != nil || p != "/layout/blobs/sha256/"+good.Encoded() {
		t.Fatalf("BlobPath(good) = %q, %v", p, err)
	}
}

func writeIndex(t *testing.T, dir string, idx ocispec.Index) {
	t.Helper()
	raw, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

// The manifest imported for a name is the one annotated with it, else the
// layout's only manifest; anything else is not found.
func TestManifestChoice(t *testing.T) {
	a := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("a"),
		Annotations: map[string]string{ocispec.AnnotationRefName: "isol8:a"}}
	b := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("b"),
		Annotations: map[string]string{ocispec.AnnotationRefName: "isol8:b"}}
	dir := t.TempDir()
	writeIndex(t, dir, ocispec.Index{Manifests: []ocispec.Descriptor{a, b}})
	if got, err := Manifest(dir, "isol8:b"); err != nil || got.Digest != b.Digest {
		t.Fatalf("isol8:b -> %v, %v", got.Digest, err)
	}
	if _, err := Manifest(dir, "isol8:c"); !errdefs.IsNotFound(err) {
		t.Fatalf("isol8:c of two manifests = %v, want not found", err)
	}
	writeIndex(t, dir, ocispec.Index{Manifests: []ocispec.Descriptor{a}})
	if got, err := Manifest(dir, "other"); err != nil || got.Digest != a.Digest {
		t.Fatalf("only manifest -> %v, %v", got.Digest, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Manifest(dir, "x"); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("broken index = %v, want invalid argument", err)
	}
}

// A manifest blob whose bytes do not match the index's descriptor is
// refused before anything is imported.
func TestReadJSONChecksDigest(t *testing.T) {
	dir := t.TempDir()
	body := []byte(`{"schemaVersion":2}`)
	desc := ocispec.Descriptor{Digest: digest.FromBytes(body), Size: int64(len(body))}
	p, _ := BlobPath(dir, desc)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(`{"schemaVersion":3}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := ReadJSON(dir, desc, &v); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("tampered manifest = %v, want invalid argument", err)
	}
	if err := os.WriteFile(p, body, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ReadJSON(dir, desc, &v); err != nil || v["schemaVersion"] != float64(2) {
		t.Fatalf("good manifest = %v, %v", v, err)
	}
}

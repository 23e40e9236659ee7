package image

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// layout writes an OCI image layout: a directory holding oci-layout,
// index.json and blobs/sha256/<hex>. It is what the builder hands to a
// driver's ImportImage, so no backend's store is written here.
type layout struct{ dir string }

// newLayout makes an empty layout in dir, which must not hold one yet.
func newLayout(dir string) (*layout, error) {
	if err := os.MkdirAll(filepath.Join(dir, ocispec.ImageBlobsDir, digest.SHA256.String()), 0o755); err != nil {
		return nil, fmt.Errorf("create layout: %w", err)
	}
	raw, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, ocispec.ImageLayoutFile), raw, 0o644); err != nil {
		return nil, fmt.Errorf("create layout: %w", err)
	}
	return &layout{dir: dir}, nil
}

func (l *layout) blobPath(d digest.Digest) string {
	return filepath.Join(l.dir, ocispec.ImageBlobsDir, d.Algorithm().String(), d.Encoded())
}

// countingWriter counts bytes written through it.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// writeBlob streams what write produces into a blob and returns its
// descriptor. Layers are uncompressed tars, so a layer's digest is also its
// diff ID.
func (l *layout) writeBlob(mediaType string, write func(io.Writer) error) (desc ocispec.Descriptor, retErr error) {
	f, err := os.CreateTemp(filepath.Join(l.dir, ocispec.ImageBlobsDir), ".ingest-*")
	if err != nil {
		return desc, fmt.Errorf("write blob: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if f != nil {
			f.Close()
		}
		if retErr != nil {
			_ = os.Remove(tmp)
		}
	}()
	dg := digest.SHA256.Digester()
	var cnt countingWriter
	bw := bufio.NewWriterSize(io.MultiWriter(f, dg.Hash(), &cnt), 1<<20)
	if err := write(bw); err != nil {
		return desc, err
	}
	if err := bw.Flush(); err != nil {
		return desc, fmt.Errorf("write blob: %w", err)
	}
	err = f.Close()
	f = nil
	if err != nil {
		return desc, fmt.Errorf("write blob: %w", err)
	}
	desc = ocispec.Descriptor{MediaType: mediaType, Digest: dg.Digest(), Size: cnt.n}
	if err := os.Rename(tmp, l.blobPath(desc.Digest)); err != nil {
		return desc, fmt.Errorf("write blob: %w", err)
	}
	return desc, nil
}

// writeJSON stores v as a blob.
func (l *layout) writeJSON(mediaType string, v any) (ocispec.Descriptor, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return l.writeBlob(mediaType, func(w io.Writer) error {
		_, err := w.Write(raw)
		return err
	})
}

// linkBlob adds a blob that already sits in a file (the cached base layer)
// under desc: a hard link where the file system allows, a copy elsewhere.
func (l *layout) linkBlob(desc ocispec.Descriptor, path string) error {
	// A full digest check would read the whole base layer on every build;
	// the size catches a truncated or replaced file.
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("add blob %s: %w", desc.Digest, err)
	}
	if st.Size() != desc.Size {
		return fmt.Errorf("add blob %s: file %s holds %d bytes, want %d", desc.Digest, path, st.Size(), desc.Size)
	}
	dst := l.blobPath(desc.Digest)
	if err := os.Link(path, dst); err == nil {
		return nil
	}
	src, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("add blob %s: %w", desc.Digest, err)
	}
	defer src.Close()
	got, err := l.writeBlob(desc.MediaType, func(w io.Writer) error {
		_, err := io.Copy(w, src)
		return err
	})
	if err != nil {
		return fmt.Errorf("add blob %s: %w", desc.Digest, err)
	}
	if got.Digest != desc.Digest || got.Size != desc.Size {
		return fmt.Errorf("add blob %s: file %s holds %s (%d bytes)", desc.Digest, path, got.Digest, got.Size)
	}
	return nil
}

// writeImage writes config and manifest for layers and an index naming the
// manifest ref, and returns the manifest's descriptor.
func (l *layout) writeImage(ref string, cfg ocispec.Image, layers []ocispec.Descriptor) (ocispec.Descriptor, error) {
	cfgDesc, err := l.writeJSON(ocispec.MediaTypeImageConfig, cfg)
	if err != nil {
		return cfgDesc, fmt.Errorf("write image config: %w", err)
	}
	mf := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cfgDesc,
		Layers:    layers,
	}
	mfDesc, err := l.writeJSON(ocispec.MediaTypeImageManifest, mf)
	if err != nil {
		return mfDesc, fmt.Errorf("write manifest: %w", err)
	}
	mfDesc.Annotations = map[string]string{ocispec.AnnotationRefName: ref}
	idx := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{mfDesc},
	}
	raw, err := json.Marshal(idx)
	if err != nil {
		return mfDesc, err
	}
	if err := os.WriteFile(filepath.Join(l.dir, ocispec.ImageIndexFile), raw, 0o644); err != nil {
		return mfDesc, fmt.Errorf("write index: %w", err)
	}
	return mfDesc, nil
}

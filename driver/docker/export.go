package docker

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/isol8/isol8/driver"
	"github.com/isol8/isol8/driver/ocilayout"
)

var _ driver.LayerExporter = (*Driver)(nil)

// maxSymlinkHops bounds how many links a layer path of a saved archive
// may go through (Docker links a layer that repeats to its first copy).
const maxSymlinkHops = 8

// ExportLayers writes image name's layers into the OCI layout at
// layoutDir: Docker keeps no compressed blobs a layout could refer to, so
// the image is saved (`docker save`, a docker-archive whose manifest.json
// lists the layer tars) and each layer tar is streamed into
// blobs/sha256/<sha256 of the tar>. Layers are uncompressed in the
// archive, so each descriptor's digest is also the layer's diff ID.
func (d *Driver) ExportLayers(ctx context.Context, name, layoutDir string) ([]ocispec.Descriptor, error) {
	rc, err := d.client.ImageSave(ctx, []string{name})
	if err != nil {
		return nil, fmt.Errorf("export layers of %s: %w", name, err)
	}
	defer rc.Close()
	descs, err := exportArchiveLayers(rc, layoutDir)
	if err != nil {
		return nil, fmt.Errorf("export layers of %s: %w", name, err)
	}
	return descs, nil
}

// archiveEntry is what one layer path of a saved archive turned into.
type archiveEntry struct {
	desc ocispec.Descriptor
	link string // target path when the entry is a symbolic link
}

// exportArchiveLayers reads a docker-archive (docker save) from r, writes
// its layer tars as blobs into the layout at dir and returns the layers
// of the archive's only image, in manifest order. manifest.json may come
// after the layers (it does with Docker 20.10), so every layer-like entry
// is written while the archive streams, and the unused ones are removed
// at the end.
func exportArchiveLayers(r io.Reader, dir string) (descs []ocispec.Descriptor, retErr error) {
	blobs := filepath.Join(dir, ocispec.ImageBlobsDir, digest.SHA256.String())
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return nil, err
	}
	entries := map[string]archiveEntry{}
	written := map[digest.Digest]bool{}
	var manifest []struct{ Layers []string }
	defer func() {
		used := map[digest.Digest]bool{}
		for _, d := range descs {
			used[d.Digest] = true
		}
		for dg := range written {
			if retErr != nil || !used[dg] {
				_ = os.Remove(filepath.Join(blobs, dg.Encoded()))
			}
		}
	}()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read saved image: %w", err)
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		switch {
		case name == "manifest.json" && hdr.Typeflag == tar.TypeReg:
			if hdr.Size > ocilayout.MaxJSON {
				return nil, fmt.Errorf("saved image: manifest.json of %d bytes", hdr.Size)
			}
			if err := json.NewDecoder(io.LimitReader(tr, ocilayout.MaxJSON)).Decode(&manifest); err != nil {
				return nil, fmt.Errorf("saved image: manifest.json: %w", err)
			}
		case !isLayerPath(name):
		case hdr.Typeflag == tar.TypeSymlink:
			entries[name] = archiveEntry{link: path.Join(path.Dir(name), hdr.Linkname)}
		case hdr.Typeflag == tar.TypeReg:
			desc, err := writeLayerBlob(blobs, tr)
			if err != nil {
				return nil, fmt.Errorf("saved image: layer %s: %w", name, err)
			}
			written[desc.Digest] = true
			entries[name] = archiveEntry{desc: desc}
		}
	}
	if len(manifest) != 1 {
		return nil, fmt.Errorf("saved image: manifest.json lists %d images, want 1", len(manifest))
	}
	for _, l := range manifest[0].Layers {
		desc, err := resolveLayer(entries, path.Clean(l))
		if err != nil {
			return nil, err
		}
		descs = append(descs, desc)
	}
	return descs, nil
}

// isLayerPath tells the entries of a saved archive that may be layers:
// <id>/layer.tar (legacy format) or blobs/sha256/<hex> (OCI-style
// archives of newer Docker versions).
func isLayerPath(name string) bool {
	return path.Base(name) == "layer.tar" || strings.HasPrefix(name, "blobs/")
}

// resolveLayer follows name through the archive's links to a layer blob.
func resolveLayer(entries map[string]archiveEntry, name string) (ocispec.Descriptor, error) {
	for range maxSymlinkHops {
		e, ok := entries[name]
		if !ok {
			return ocispec.Descriptor{}, fmt.Errorf("saved image: layer %s missing from the archive", name)
		}
		if e.link == "" {
			return e.desc, nil
		}
		name = e.link
	}
	return ocispec.Descriptor{}, errors.New("saved image: too many links to a layer")
}

// writeLayerBlob streams r into blobs/<its sha256> and returns its
// descriptor.
func writeLayerBlob(blobs string, r io.Reader) (ocispec.Descriptor, error) {
	f, err := os.CreateTemp(blobs, ".ingest-*")
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	tmp := f.Name()
	dg := digest.SHA256.Digester()
	n, err := io.Copy(io.MultiWriter(f, dg.Hash()), r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return ocispec.Descriptor{}, err
	}
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: dg.Digest(), Size: n}
	if err := os.Rename(tmp, filepath.Join(blobs, desc.Digest.Encoded())); err != nil {
		_ = os.Remove(tmp)
		return ocispec.Descriptor{}, err
	}
	return desc, nil
}

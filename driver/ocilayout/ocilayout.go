// Package ocilayout reads the small parts of an OCI image layout (index,
// manifests, configs) that the drivers import, treating the layout as
// untrusted: sizes are bounded, digests checked, and a descriptor cannot
// name a path outside the layout.
package ocilayout

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/isol8/isol8/api"
)

// MaxJSON bounds an index, manifest or config read from a layout.
const MaxJSON = 4 << 20

// Manifest picks name's manifest from the layout's index: the one
// annotated with that reference name, else the only one.
func Manifest(dir, name string) (ocispec.Descriptor, error) {
	raw, err := ReadLimited(filepath.Join(dir, ocispec.ImageIndexFile))
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return ocispec.Descriptor{}, api.InvalidArgumentf("layout %s: index: %v", dir, err)
	}
	var found []ocispec.Descriptor
	for _, m := range idx.Manifests {
		if m.MediaType != ocispec.MediaTypeImageManifest {
			continue
		}
		if m.Annotations[ocispec.AnnotationRefName] == name {
			return m, nil
		}
		found = append(found, m)
	}
	if len(found) != 1 {
		return ocispec.Descriptor{}, api.NotFoundf("layout %s holds no manifest for %s", dir, name)
	}
	return found[0], nil
}

// ReadJSON reads a small JSON blob of the layout and checks its digest.
func ReadJSON(dir string, desc ocispec.Descriptor, v any) error {
	path, err := BlobPath(dir, desc)
	if err != nil {
		return err
	}
	raw, err := ReadLimited(path)
	if err != nil {
		return err
	}
	if int64(len(raw)) != desc.Size || desc.Digest.Algorithm().FromBytes(raw) != desc.Digest {
		return api.InvalidArgumentf("blob %s does not match its descriptor", desc.Digest)
	}
	return json.Unmarshal(raw, v)
}

// BlobPath is where a layout keeps desc's blob. The digest is validated
// first, so a hostile descriptor cannot name a path outside the layout.
func BlobPath(dir string, desc ocispec.Descriptor) (string, error) {
	if err := desc.Digest.Validate(); err != nil {
		return "", api.InvalidArgumentf("blob digest %q: %v", desc.Digest, err)
	}
	if desc.Digest.Algorithm() != digest.SHA256 || desc.Size < 0 {
		return "", api.InvalidArgumentf("blob %s: unsupported descriptor", desc.Digest)
	}
	return filepath.Join(dir, ocispec.ImageBlobsDir, desc.Digest.Algorithm().String(), desc.Digest.Encoded()), nil
}

// ReadLimited reads a small file of the layout (index, manifest, config),
// refusing one larger than MaxJSON.
func ReadLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxJSON {
		return nil, api.InvalidArgumentf("%s: %d bytes, too large", path, st.Size())
	}
	return io.ReadAll(f)
}

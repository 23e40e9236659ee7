package image

import (
	"context"
	"fmt"
	"runtime"
	"slices"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/driver"
)

// List returns the names of the images carrying isol8.managed=true, sorted.
func List(ctx context.Context, store driver.Images) ([]string, error) {
	names, err := store.ListImages(ctx, map[string]string{LabelManaged: "true"})
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// Remove deletes one isol8-managed image (a full name such as "isol8:python",
// or a runtime name); the backend releases its blobs and unpacked layers
// unless another image still uses them (the shared base layer). Images
// without isol8.managed=true are refused.
func Remove(ctx context.Context, store driver.Images, name string) error {
	if slices.Contains(Runtimes, name) {
		name = Name(name)
	}
	info, err := store.ImageInfo(ctx, name)
	if err != nil {
		return fmt.Errorf("remove image %s: %w", name, err)
	}
	if info.Labels[LabelManaged] != "true" {
		return api.FailedPreconditionf("remove image %s: not managed by isol8", name)
	}
	return store.RemoveImage(ctx, name)
}

// imageConfig is the OCI config of a runtime image.
func imageConfig(b baseRecipe, layers []ocispec.Descriptor) ocispec.Image {
	cfg := ocispec.Image{
		Platform: ocispec.Platform{Architecture: runtime.GOARCH, OS: "linux"},
		Config:   ocispec.ImageConfig{Env: slices.Clone(b.Env), WorkingDir: b.WorkingDir},
		RootFS:   ocispec.RootFS{Type: "layers"},
	}
	for _, l := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.Digest) // uncompressed: blob digest = diff ID
	}
	return cfg
}

package image

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/isol8/isol8/api"
)

// List returns the names of the images carrying isol8.managed=true in the
// context's namespace, sorted.
func List(ctx context.Context, c *client.Client) ([]string, error) {
	imgs, err := c.ImageService().List(ctx, `labels."`+LabelManaged+`"==true`)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	names := make([]string, 0, len(imgs))
	for _, img := range imgs {
		names = append(names, img.Name)
	}
	slices.Sort(names)
	return names, nil
}

// Remove deletes one isol8-managed image (a full name such as "isol8:python",
// or a runtime name) and waits for containerd's garbage collector, which
// releases its blobs and unpacked snapshots unless another image still uses
// them (the shared base layer). Images without isol8.managed=true are refused.
func Remove(ctx context.Context, c *client.Client, name string) error {
	if slices.Contains(Runtimes, name) {
		name = Name(name)
	}
	is := c.ImageService()
	img, err := is.Get(ctx, name)
	if err != nil {
		return fmt.Errorf("remove image %s: %w", name, err)
	}
	if img.Labels[LabelManaged] != "true" {
		return api.FailedPreconditionf("remove image %s: not managed by isol8", name)
	}
	if err := is.Delete(ctx, name, images.SynchronousDelete()); err != nil {
		return fmt.Errorf("remove image %s: %w", name, err)
	}
	return nil
}

// countingWriter counts bytes written through it.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// pushLayer streams an uncompressed tar layer produced by write into the
// content store and returns its descriptor. The caller holds a lease. The
// blob digest is also the layer's diff ID.
func pushLayer(ctx context.Context, cs content.Store, name string, write func(io.Writer) error) (desc ocispec.Descriptor, retErr error) {
	ref := "isol8-layer-" + name + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	cw, err := content.OpenWriter(ctx, cs, content.WithRef(ref))
	if err != nil {
		return desc, fmt.Errorf("open content writer: %w", err)
	}
	defer func() {
		cw.Close()
		if retErr != nil {
			_ = cs.Abort(context.WithoutCancel(ctx), ref) // best effort: the ingest expires anyway
		}
	}()
	dg := digest.SHA256.Digester()
	var cnt countingWriter
	bw := bufio.NewWriterSize(io.MultiWriter(cw, dg.Hash(), &cnt), 1<<20)
	if err := write(bw); err != nil {
		return desc, err
	}
	if err := bw.Flush(); err != nil {
		return desc, fmt.Errorf("write layer: %w", err)
	}
	desc = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: dg.Digest(), Size: cnt.n}
	if err := cw.Commit(ctx, desc.Size, desc.Digest); err != nil && !errdefs.IsAlreadyExists(err) {
		return desc, fmt.Errorf("commit layer: %w", err)
	}
	return desc, nil
}

// hasBlob reports whether the content store holds desc's blob.
func hasBlob(ctx context.Context, cs content.Store, desc ocispec.Descriptor) (bool, error) {
	info, err := cs.Info(ctx, desc.Digest)
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return info.Size == desc.Size, nil
}

// writeJSONBlob stores v as a blob with the given labels (labels are
// re-applied if the blob already exists).
func writeJSONBlob(ctx context.Context, cs content.Store, mediaType string, v any, labels map[string]string) (ocispec.Descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	ref := "isol8-" + desc.Digest.Encoded()
	if err := content.WriteBlob(ctx, cs, ref, bytes.NewReader(b), desc, content.WithLabels(labels)); err != nil {
		return desc, err
	}
	if len(labels) > 0 {
		var paths []string
		for k := range labels {
			paths = append(paths, "labels."+k)
		}
		if _, err := cs.Update(ctx, content.Info{Digest: desc.Digest, Labels: labels}, paths...); err != nil {
			return desc, err
		}
	}
	return desc, nil
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

// commitImage writes config and manifest for layers, creates or replaces the
// image record and unpacks it for the default snapshotter. The caller holds
// a lease covering the layer blobs.
func commitImage(ctx context.Context, c *client.Client, rt, buildHash string, b baseRecipe, layers []ocispec.Descriptor) error {
	cs := c.ContentStore()
	cfgDesc, err := writeJSONBlob(ctx, cs, ocispec.MediaTypeImageConfig, imageConfig(b, layers), nil)
	if err != nil {
		return fmt.Errorf("write image config: %w", err)
	}
	mf := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cfgDesc,
		Layers:    layers,
	}
	gcLabels := map[string]string{"containerd.io/gc.ref.content.config": cfgDesc.Digest.String()}
	for i, l := range layers {
		gcLabels["containerd.io/gc.ref.content.l."+strconv.Itoa(i)] = l.Digest.String()
	}
	mfDesc, err := writeJSONBlob(ctx, cs, ocispec.MediaTypeImageManifest, mf, gcLabels)
	if err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	img := images.Image{
		Name:   Name(rt),
		Target: mfDesc,
		Labels: map[string]string{LabelManaged: "true", LabelRuntime: rt, LabelBuildHash: buildHash},
	}
	is := c.ImageService()
	created, err := is.Create(ctx, img)
	if errdefs.IsAlreadyExists(err) {
		created, err = is.Update(ctx, img)
	}
	if err != nil {
		return fmt.Errorf("record image %s: %w", img.Name, err)
	}
	if err := client.NewImage(c, created).Unpack(ctx, ""); err != nil {
		return fmt.Errorf("unpack %s: %w", img.Name, err)
	}
	return nil
}

// manifestOf reads an image's manifest.
func manifestOf(ctx context.Context, cs content.Store, img images.Image) (ocispec.Manifest, error) {
	var mf ocispec.Manifest
	if img.Target.MediaType != ocispec.MediaTypeImageManifest {
		return mf, fmt.Errorf("image %s: target is %s, not an OCI manifest", img.Name, img.Target.MediaType)
	}
	b, err := content.ReadBlob(ctx, cs, img.Target)
	if err != nil {
		return mf, err
	}
	if err := json.Unmarshal(b, &mf); err != nil {
		return mf, fmt.Errorf("image %s: manifest: %w", img.Name, err)
	}
	return mf, nil
}

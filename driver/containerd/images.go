package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/isol8/isol8/driver"
	"github.com/isol8/isol8/driver/ocilayout"
)

// ocilayout.MaxJSON bounds the index and manifest read from a layout; both are
// a few kilobytes.

// ImageInfo describes an image: its labels and the diff IDs of its layers.
func (d *Driver) ImageInfo(ctx context.Context, name string) (driver.ImageInfo, error) {
	ctx = d.withNS(ctx)
	img, err := d.client.ImageService().Get(ctx, name)
	if err != nil {
		return driver.ImageInfo{}, fmt.Errorf("image %s: %w", name, err)
	}
	cimg := client.NewImage(d.client, img)
	diffIDs, err := cimg.RootFS(ctx)
	if err != nil {
		return driver.ImageInfo{}, fmt.Errorf("image %s rootfs: %w", name, err)
	}
	info := driver.ImageInfo{Name: img.Name, ID: img.Target.Digest.Encoded(), Labels: img.Labels}
	if cfg, err := cimg.Config(ctx); err == nil {
		info.ID = cfg.Digest.Encoded()
	}
	for _, id := range diffIDs {
		info.Layers = append(info.Layers, id.String())
	}
	info.Created = img.CreatedAt
	if mf, err := images.Manifest(ctx, d.client.ContentStore(), img.Target, nil); err == nil {
		info.LayerBlobs = mf.Layers
		info.Size = mf.Config.Size
		for _, l := range mf.Layers {
			info.Size += l.Size
		}
	}
	return info, nil
}

// ListImages returns the names of the images carrying all labels, sorted.
func (d *Driver) ListImages(ctx context.Context, labels map[string]string) ([]string, error) {
	imgs, err := d.client.ImageService().List(d.withNS(ctx), labelFilter(labels)...)
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

// RemoveImage deletes an image and waits for containerd's garbage
// collector, which releases its blobs and unpacked snapshots unless another
// image still uses them.
func (d *Driver) RemoveImage(ctx context.Context, name string) error {
	if err := d.client.ImageService().Delete(d.withNS(ctx), name, images.SynchronousDelete()); err != nil {
		return fmt.Errorf("remove image %s: %w", name, err)
	}
	d.forgetImage(name)
	return nil
}

// ImportImage writes the layout's blobs for name into the content store
// (skipping those already there), creates or updates the image record with
// labels and unpacks it for the snapshotter sandboxes use.
func (d *Driver) ImportImage(ctx context.Context, dir, name string, labels map[string]string) error {
	ctx = d.withNS(ctx)
	mfDesc, err := ocilayout.Manifest(dir, name)
	if err != nil {
		return fmt.Errorf("import image %s: %w", name, err)
	}
	var mf ocispec.Manifest
	if err := ocilayout.ReadJSON(dir, mfDesc, &mf); err != nil {
		return fmt.Errorf("import image %s: manifest: %w", name, err)
	}
	// The lease keeps fresh blobs from the garbage collector until the
	// image record references them.
	ctx, done, err := d.client.WithLease(ctx)
	if err != nil {
		return fmt.Errorf("import image %s: lease: %w", name, err)
	}
	defer cleanup(ctx, d.log, "release import lease", done)
	cs := d.client.ContentStore()
	for _, desc := range append([]ocispec.Descriptor{mf.Config}, mf.Layers...) {
		if err := importBlob(ctx, cs, dir, desc, nil); err != nil {
			return fmt.Errorf("import image %s: %w", name, err)
		}
	}
	gcLabels := map[string]string{"containerd.io/gc.ref.content.config": mf.Config.Digest.String()}
	for i, l := range mf.Layers {
		gcLabels["containerd.io/gc.ref.content.l."+strconv.Itoa(i)] = l.Digest.String()
	}
	if err := importBlob(ctx, cs, dir, mfDesc, gcLabels); err != nil {
		return fmt.Errorf("import image %s: %w", name, err)
	}
	img := images.Image{Name: name, Target: ocispec.Descriptor{MediaType: mfDesc.MediaType, Digest: mfDesc.Digest, Size: mfDesc.Size}, Labels: labels}
	is := d.client.ImageService()
	created, err := is.Create(ctx, img)
	if errdefs.IsAlreadyExists(err) {
		created, err = is.Update(ctx, img)
	}
	if err != nil {
		return fmt.Errorf("record image %s: %w", name, err)
	}
	d.forgetImage(name)
	if err := client.NewImage(d.client, created).Unpack(ctx, snapshotter); err != nil {
		return fmt.Errorf("unpack %s: %w", name, err)
	}
	return nil
}

// importBlob copies one layout blob into the content store unless it is
// there already, and sets labels on it. The store checks the digest.
func importBlob(ctx context.Context, cs content.Store, dir string, desc ocispec.Descriptor, labels map[string]string) error {
	info, err := cs.Info(ctx, desc.Digest)
	switch {
	case err == nil && info.Size == desc.Size:
	case err == nil || errdefs.IsNotFound(err):
		path, err := ocilayout.BlobPath(dir, desc)
		if err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("blob %s: %w", desc.Digest, err)
		}
		defer f.Close()
		// A ref of its own per attempt: an ingest left by a failed attempt
		// (bytes that did not match) would otherwise be resumed.
		ref := "isol8-import-" + desc.Digest.Encoded()[:12] + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		if err := content.WriteBlob(ctx, cs, ref, f, desc, content.WithLabels(labels)); err != nil {
			if aerr := cs.Abort(context.WithoutCancel(ctx), ref); aerr != nil && !errdefs.IsNotFound(aerr) {
				err = errors.Join(err, aerr)
			}
			return fmt.Errorf("write blob %s: %w", desc.Digest, err)
		}
	default:
		return fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	if len(labels) == 0 {
		return nil
	}
	var paths []string
	for k := range labels {
		paths = append(paths, "labels."+k)
	}
	if _, err := cs.Update(ctx, content.Info{Digest: desc.Digest, Labels: labels}, paths...); err != nil {
		return fmt.Errorf("label blob %s: %w", desc.Digest, err)
	}
	return nil
}

// labelFilter is a containerd list filter matching all labels.
func labelFilter(labels map[string]string) []string {
	if len(labels) == 0 {
		return nil
	}
	var parts []string
	for k, v := range labels {
		parts = append(parts, fmt.Sprintf("labels.%q==%s", k, v))
	}
	slices.Sort(parts)
	return []string{strings.Join(parts, ",")}
}

package docker

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/isol8/isol8/driver"
	"github.com/isol8/isol8/driver/ocilayout"
)

// ocilayout.MaxJSON bounds the index, manifest and config read from a layout;
// all are a few kilobytes.

// ImageInfo describes an image: its id (the config digest), labels (the
// config's, which is where Docker keeps image labels), layer diff IDs, size
// and creation time (the config's). Docker keeps no compressed layer blobs,
// so LayerBlobs stay empty; ExportLayers writes the layers instead.
func (d *Driver) ImageInfo(ctx context.Context, name string) (driver.ImageInfo, error) {
	res, err := d.client.ImageInspect(ctx, name)
	if err != nil {
		return driver.ImageInfo{}, fmt.Errorf("image %s: %w", name, err)
	}
	info := driver.ImageInfo{Name: name, ID: strings.TrimPrefix(res.ID, "sha256:")}
	if res.Config != nil {
		info.Labels = res.Config.Labels
	}
	info.Layers = slices.Clone(res.RootFS.Layers)
	info.Size = res.Size
	if t, err := time.Parse(time.RFC3339Nano, res.Created); err == nil {
		info.Created = t
	}
	return info, nil
}

// ListImages returns the tags of the images carrying all labels, sorted.
func (d *Driver) ListImages(ctx context.Context, labels map[string]string) ([]string, error) {
	f := client.Filters{}
	for k, v := range labels {
		f.Add("label", k+"="+v)
	}
	res, err := d.client.ImageList(ctx, client.ImageListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	var names []string
	for _, img := range res.Items {
		for _, t := range img.RepoTags {
			if t != "<none>:<none>" {
				names = append(names, t)
			}
		}
	}
	slices.Sort(names)
	return names, nil
}

// RemoveImage untags an image and deletes it when nothing else uses it.
func (d *Driver) RemoveImage(ctx context.Context, name string) error {
	if _, err := d.client.ImageInspect(ctx, name); err != nil {
		return fmt.Errorf("remove image %s: %w", name, err)
	}
	if _, err := d.client.ImageRemove(ctx, name, client.ImageRemoveOptions{PruneChildren: true}); err != nil {
		return fmt.Errorf("remove image %s: %w", name, err)
	}
	return nil
}

// ImportImage loads name's manifest from the OCI layout in dir into Docker
// as image name. Docker keeps image labels in the image config, so labels
// are written into a copy of the config (which changes the image id, not
// the layers). The layout is streamed to `docker load` as a docker-archive
// (manifest.json), the format every Docker version loads. A replaced image
// of the same name is removed unless something still uses it.
func (d *Driver) ImportImage(ctx context.Context, dir, name string, labels map[string]string) error {
	mfDesc, err := ocilayout.Manifest(dir, name)
	if err != nil {
		return fmt.Errorf("import image %s: %w", name, err)
	}
	var mf ocispec.Manifest
	if err := ocilayout.ReadJSON(dir, mfDesc, &mf); err != nil {
		return fmt.Errorf("import image %s: manifest: %w", name, err)
	}
	cfg, err := labelledConfig(dir, mf.Config, labels)
	if err != nil {
		return fmt.Errorf("import image %s: config: %w", name, err)
	}
	var layers []string
	for _, l := range mf.Layers {
		p, err := ocilayout.BlobPath(dir, l)
		if err != nil {
			return fmt.Errorf("import image %s: %w", name, err)
		}
		layers = append(layers, p)
	}
	old, _ := d.ImageInfo(ctx, name)

	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeDockerArchive(pw, name, cfg, layers)) }()
	res, err := d.client.ImageLoad(ctx, pr, client.ImageLoadWithQuiet(true))
	if err != nil {
		pr.CloseWithError(err)
		return fmt.Errorf("import image %s: load: %w", name, err)
	}
	defer res.Close()
	if err := loadResult(res); err != nil {
		pr.CloseWithError(err)
		return fmt.Errorf("import image %s: load: %w", name, err)
	}
	newID := digest.FromBytes(cfg).Encoded()
	if old.ID != "" && old.ID != newID {
		// The old image lost its tag; remove it unless a container uses it.
		if _, err := d.client.ImageRemove(ctx, old.ID, client.ImageRemoveOptions{PruneChildren: true}); err != nil && !errdefs.IsNotFound(err) {
			d.log.Debug("replaced image kept", "image", old.ID, "error", err)
		}
	}
	return nil
}

// loadResult reads a load's JSON message stream and returns the error it
// reports, if any.
func loadResult(r io.Reader) error {
	dec := json.NewDecoder(bufio.NewReader(r))
	for {
		var msg struct {
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if msg.Error != "" {
			return fmt.Errorf("%s", msg.Error)
		}
		if msg.ErrorDetail != nil && msg.ErrorDetail.Message != "" {
			return fmt.Errorf("%s", msg.ErrorDetail.Message)
		}
	}
}

// labelledConfig returns the image config blob with labels merged into its
// config.Labels.
func labelledConfig(dir string, desc ocispec.Descriptor, labels map[string]string) ([]byte, error) {
	var raw map[string]json.RawMessage
	if err := ocilayout.ReadJSON(dir, desc, &raw); err != nil {
		return nil, err
	}
	var inner map[string]json.RawMessage
	if c, ok := raw["config"]; ok && string(c) != "null" {
		if err := json.Unmarshal(c, &inner); err != nil {
			return nil, err
		}
	}
	if inner == nil {
		inner = map[string]json.RawMessage{}
	}
	merged := map[string]string{}
	if l, ok := inner["Labels"]; ok && string(l) != "null" {
		if err := json.Unmarshal(l, &merged); err != nil {
			return nil, err
		}
	}
	maps.Copy(merged, labels)
	var err error
	if inner["Labels"], err = json.Marshal(merged); err != nil {
		return nil, err
	}
	if raw["config"], err = json.Marshal(inner); err != nil {
		return nil, err
	}
	return json.Marshal(raw)
}

// writeDockerArchive writes a docker-archive tar: manifest.json naming the
// config and layers, the config, and the layer blobs as they are (Docker
// detects compression).
func writeDockerArchive(w io.Writer, name string, cfg []byte, layers []string) error {
	tw := tar.NewWriter(w)
	cfgName := digest.FromBytes(cfg).Encoded() + ".json"
	entry := struct {
		Config   string
		RepoTags []string
		Layers   []string
	}{Config: cfgName, RepoTags: []string{name}}
	for _, p := range layers {
		entry.Layers = append(entry.Layers, "layers/"+filepath.Base(p)+".tar")
	}
	manifest, err := json.Marshal([]any{entry})
	if err != nil {
		return err
	}
	if err := writeTarFile(tw, "manifest.json", manifest); err != nil {
		return err
	}
	if err := writeTarFile(tw, cfgName, cfg); err != nil {
		return err
	}
	for i, p := range layers {
		if err := copyTarFile(tw, entry.Layers[i], p); err != nil {
			return err
		}
	}
	return tw.Close()
}

func writeTarFile(tw *tar.Writer, name string, data []byte) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

func copyTarFile(tw *tar.Writer, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: st.Size(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

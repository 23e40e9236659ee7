// Package dockertest gives integration tests a private dockerd with the
// runtime images in it: the daemon is started once per test binary
// (testenv.SharedDockerd) and each runtime image is copied, once per
// binary, from the isol8 containerd (where `isol8 setup` built it) as an
// OCI image layout and loaded through the Docker driver's own ImportImage,
// so the images are the very same layers and nothing is rebuilt.
package dockertest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	ctrd "github.com/isol8/isol8/driver/containerd"
	"github.com/isol8/isol8/driver/docker"
	"github.com/isol8/isol8/internal/testenv"
)

// Daemon is the test binary's dockerd, started by the first test that
// needs it; Main stops it.
var Daemon testenv.SharedDockerd

// Main is the TestMain of a test binary that uses Daemon: it runs the
// tests, stops the daemon and exits with the tests' code.
func Main(m *testing.M) {
	code := m.Run()
	Daemon.Stop()
	os.Exit(code)
}

var (
	mu       sync.Mutex
	imported = map[string]error{}
)

// MustHave returns the test dockerd's host with the named images (full
// names such as "isol8:python") loaded, or skips (fails when strict).
func MustHave(t testing.TB, images ...string) string {
	t.Helper()
	d := testenv.MustHaveDockerd(t, &Daemon)
	addr := testenv.MustHaveContainerd(t)
	mu.Lock()
	defer mu.Unlock()
	for _, name := range images {
		err, done := imported[name]
		if !done {
			err = importImage(context.Background(), addr, d.Host, name)
			imported[name] = err
		}
		if err != nil {
			t.Fatalf("load %s into the test dockerd: %v", name, err)
		}
	}
	return d.Host
}

// Import copies the named images from the containerd at ctrdAddr into the
// Docker daemon at host (for the benchmark, which has no testing.TB).
func Import(ctx context.Context, ctrdAddr, host string, names ...string) error {
	for _, name := range names {
		if err := importImage(ctx, ctrdAddr, host, name); err != nil {
			return fmt.Errorf("load %s: %w", name, err)
		}
	}
	return nil
}

// importImage copies name from containerd into dockerd.
func importImage(ctx context.Context, ctrdAddr, host, name string) error {
	dir, err := os.MkdirTemp("", "isol8-layout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	labels, err := exportLayout(ctx, ctrdAddr, name, dir)
	if err != nil {
		return err
	}
	drv, err := docker.New(ctx, docker.Config{Host: host})
	if err != nil {
		return err
	}
	defer drv.Close()
	return drv.ImportImage(ctx, dir, name, labels)
}

// exportLayout writes containerd's image name as an OCI layout into dir and
// returns the image's labels.
func exportLayout(ctx context.Context, addr, name, dir string) (map[string]string, error) {
	c, err := client.New(addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx = namespaces.WithNamespace(ctx, ctrd.Namespace)
	img, err := c.ImageService().Get(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", name, err)
	}
	cs := c.ContentStore()
	mfRaw, err := content.ReadBlob(ctx, cs, img.Target)
	if err != nil {
		return nil, err
	}
	var mf ocispec.Manifest
	if err := json.Unmarshal(mfRaw, &mf); err != nil {
		return nil, err
	}
	for _, desc := range append([]ocispec.Descriptor{img.Target, mf.Config}, mf.Layers...) {
		if err := copyBlob(ctx, cs, dir, desc); err != nil {
			return nil, err
		}
	}
	target := img.Target
	target.Annotations = map[string]string{ocispec.AnnotationRefName: name}
	idx, err := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{target}})
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, ocispec.ImageIndexFile), idx, 0o644); err != nil {
		return nil, err
	}
	return img.Labels, os.WriteFile(filepath.Join(dir, ocispec.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}

func copyBlob(ctx context.Context, cs content.Store, dir string, desc ocispec.Descriptor) error {
	ra, err := cs.ReaderAt(ctx, desc)
	if err != nil {
		return fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	defer ra.Close()
	p := filepath.Join(dir, ocispec.ImageBlobsDir, desc.Digest.Algorithm().String(), desc.Digest.Encoded())
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, content.NewReader(ra)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

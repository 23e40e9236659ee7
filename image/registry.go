package image

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/schollz/progressbar/v3"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/driver"
)

// LabelSource records where a registry-sourced image came from.
const LabelSource = "isol8.source"

// registryLayerVersion changes whenever the isol8 layer added to pulled
// images changes, making every registry-sourced image stale.
const registryLayerVersion = "1"

// CheckRegistryRefs validates the references of a registry setup: known
// runtimes, each reference pinned by digest (name@sha256:...).
func CheckRegistryRefs(refs map[string]string) error {
	if len(refs) == 0 {
		return api.InvalidArgumentf("images.registry names no runtime: give a reference pinned by digest per runtime, e.g. \"python\": \"mirror.local/isol8/python@sha256:...\"")
	}
	keys := mapsKeys(refs)
	slices.Sort(keys)
	for _, rt := range keys {
		if !slices.Contains(Runtimes, rt) {
			return api.InvalidArgumentf("images.registry.%s: unknown runtime (want one of %s)", rt, strings.Join(Runtimes, ", "))
		}
		if _, err := parsePinned(refs[rt]); err != nil {
			return api.InvalidArgumentf("images.registry.%s: %v", rt, err)
		}
	}
	return nil
}

func mapsKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// parsePinned parses a reference that must name a digest. Registries on
// loopback are spoken to over plain HTTP (a local mirror or a test's),
// every other over HTTPS.
func parsePinned(ref string) (name.Digest, error) {
	if !strings.Contains(ref, "@") {
		return name.Digest{}, fmt.Errorf("reference %q is not pinned: append @sha256:<digest>", ref)
	}
	d, err := name.NewDigest(ref)
	if err != nil {
		return d, fmt.Errorf("reference %q: %v", ref, err)
	}
	if loopbackRegistry(d.RegistryStr()) {
		return name.NewDigest(ref, name.Insecure)
	}
	return d, nil
}

func loopbackRegistry(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// SetupFromRegistry makes each runtime image named in refs from a base
// pulled from a registry (the reference's digest pinned) plus isol8's
// layer (the sandbox user, /sandbox, the init's mountpoint), or reports it
// up to date (same reference, same layer recipe). Progress bars show the
// pulls on opts.Progress. Runtimes not in refs are left alone.
func SetupFromRegistry(ctx context.Context, store driver.Images, refs map[string]string, opts Options) ([]Result, error) {
	if err := CheckRegistryRefs(refs); err != nil {
		return nil, err
	}
	b := newBuilder(store, opts)
	var rts []string
	for _, rt := range Runtimes {
		if _, ok := refs[rt]; ok {
			rts = append(rts, rt)
		}
	}
	return b.each(ctx, rts, func(ctx context.Context, rt string) (Result, error) { return b.pullOne(ctx, rt, refs[rt]) })
}

// registryHash is the build hash of a registry-sourced image.
func registryHash(ref string, base baseRecipe) string {
	return hashJSON(struct {
		Version, Layer, Ref string
		User, Group         string
		UID, GID            int
	}{recipeVersion, registryLayerVersion, ref, base.User, base.Group, base.UID, base.GID})
}

func (b *builder) pullOne(ctx context.Context, rt, refStr string) (Result, error) {
	res := Result{Runtime: rt, Image: Name(rt)}
	start := time.Now()
	ref, err := parsePinned(refStr)
	if err != nil {
		return res, err
	}
	hash := registryHash(ref.String(), b.base)
	if !b.force {
		info, err := b.store.ImageInfo(ctx, Name(rt))
		if err == nil && info.Labels[LabelBuildHash] == hash {
			res.UpToDate, res.Duration = true, time.Since(start)
			return res, nil
		}
		if err != nil && !errdefs.IsNotFound(err) {
			return res, fmt.Errorf("inspect image: %w", err)
		}
	}
	img, err := remote.Image(ref, remote.WithContext(ctx),
		remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}))
	if err != nil {
		return res, fmt.Errorf("pull %s: %w", ref, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return res, fmt.Errorf("pull %s: config: %w", ref, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return res, fmt.Errorf("pull %s: layers: %w", ref, err)
	}
	if err := os.MkdirAll(b.workDir(), 0o755); err != nil {
		return res, err
	}
	work, err := os.MkdirTemp(b.workDir(), "pull-"+rt+"-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(work)
	lay, err := newLayout(work)
	if err != nil {
		return res, err
	}
	descs, err := b.pullLayers(rt, lay, layers)
	if err != nil {
		return res, fmt.Errorf("pull %s: %w", ref, err)
	}
	accounts, err := baseAccountFiles(lay, descs)
	if err != nil {
		return res, fmt.Errorf("read accounts of %s: %w", ref, err)
	}
	own, err := lay.writeBlob(ocispec.MediaTypeImageLayer, func(w io.Writer) error {
		return writeIsol8Layer(w, b.base, accounts)
	})
	if err != nil {
		return res, fmt.Errorf("isol8 layer: %w", err)
	}
	descs = append(descs, own)
	cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, v1.Hash{Algorithm: "sha256", Hex: own.Digest.Encoded()})
	cfg.History = append(cfg.History, v1.History{Created: v1.Time{Time: start.UTC()}, CreatedBy: "isol8: sandbox user and mountpoints", Comment: "isol8"})
	cfg.Config.WorkingDir = b.base.WorkingDir
	cfg.Config.User = ""
	cfg.Config.Entrypoint, cfg.Config.Cmd = nil, nil
	if cfg.Config.Labels == nil {
		cfg.Config.Labels = map[string]string{}
	}
	cfg.Config.Labels[LabelSource] = ref.String()
	cfgDesc, err := lay.writeJSON(ocispec.MediaTypeImageConfig, cfg)
	if err != nil {
		return res, err
	}
	if err := lay.writeManifest(Name(rt), cfgDesc, descs); err != nil {
		return res, err
	}
	b.printf("- %s: importing image...\n", rt)
	labels := map[string]string{LabelManaged: "true", LabelRuntime: rt, LabelBuildHash: hash, LabelSource: ref.String()}
	if err := b.store.ImportImage(ctx, work, Name(rt), labels); err != nil {
		return res, err
	}
	res.Duration = time.Since(start)
	return res, nil
}

// pullLayers copies the pulled layers into lay as they are (compressed),
// with one progress bar over all of them; the digests are checked as the
// bytes arrive.
func (b *builder) pullLayers(rt string, lay *layout, layers []v1.Layer) ([]ocispec.Descriptor, error) {
	var total int64
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return nil, err
		}
		total += n
	}
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(b.out),
		progressbar.OptionSetDescription("pull "+rt),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(b.out) }),
	)
	defer bar.Close()
	var descs []ocispec.Descriptor
	for _, l := range layers {
		mt, err := l.MediaType()
		if err != nil {
			return nil, err
		}
		want, err := l.Digest()
		if err != nil {
			return nil, err
		}
		mediaType, err := ociLayerType(mt)
		if err != nil {
			return nil, err
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		desc, err := lay.writeBlob(mediaType, func(w io.Writer) error {
			_, err := io.Copy(io.MultiWriter(w, bar), rc)
			return err
		})
		rc.Close()
		if err != nil {
			return nil, err
		}
		if desc.Digest.String() != want.String() {
			return nil, fmt.Errorf("layer %s arrived as %s", want, desc.Digest)
		}
		descs = append(descs, desc)
	}
	return descs, nil
}

// ociLayerType maps a pulled layer's media type to the OCI one for the
// same bytes; foreign and encrypted layers are refused.
func ociLayerType(mt types.MediaType) (string, error) {
	switch mt {
	case types.DockerLayer, types.OCILayer:
		return ocispec.MediaTypeImageLayerGzip, nil
	case types.OCIUncompressedLayer, types.DockerUncompressedLayer:
		return ocispec.MediaTypeImageLayer, nil
	case types.OCILayerZStd:
		return ocispec.MediaTypeImageLayerZstd, nil
	}
	return "", fmt.Errorf("layer media type %s not supported", mt)
}

// accountFiles are the account databases isol8's layer extends.
var accountFiles = []string{"etc/passwd", "etc/group", "etc/shadow", "etc/gshadow"}

// baseAccountFiles reads the account databases as the pulled layers leave
// them (later layers win, whiteouts delete).
func baseAccountFiles(lay *layout, descs []ocispec.Descriptor) (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, d := range descs {
		if err := scanLayer(lay.blobPath(d.Digest), d.MediaType, func(name string, hdr *tar.Header, r io.Reader) error {
			dir, base := path.Split(name)
			if strings.HasPrefix(base, ".wh.") {
				delete(files, dir+strings.TrimPrefix(base, ".wh."))
				return nil
			}
			if !slices.Contains(accountFiles, name) {
				return nil
			}
			if hdr.Typeflag != tar.TypeReg || hdr.Size > 4<<20 {
				return fmt.Errorf("%s is not a regular file of sane size", name)
			}
			data, err := io.ReadAll(r)
			files[name] = data
			return err
		}); err != nil {
			return nil, err
		}
	}
	if files["etc/passwd"] == nil || files["etc/group"] == nil {
		return nil, fmt.Errorf("the image has no /etc/passwd or /etc/group")
	}
	return files, nil
}

// scanLayer walks a layer blob's entries (names cleaned, without a
// leading "./" or "/").
func scanLayer(file, mediaType string, fn func(name string, hdr *tar.Header, r io.Reader) error) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	switch mediaType {
	case ocispec.MediaTypeImageLayerGzip:
		zr, err := gzip.NewReader(f)
		if err != nil {
			return err
		}
		defer zr.Close()
		r = zr
	case ocispec.MediaTypeImageLayer:
	default:
		return fmt.Errorf("cannot read %s layers", mediaType)
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		if err := fn(name, hdr, tr); err != nil {
			return err
		}
	}
}

// writeIsol8Layer writes what isol8 adds to a pulled base: the sandbox
// user and group, /sandbox owned by them, /tmp, the mountpoints the
// runtime binds over in a read-only rootfs, and the init's mountpoint.
func writeIsol8Layer(w io.Writer, r baseRecipe, accounts map[string][]byte) error {
	lt := newLayerTar(w)
	for _, file := range accountFiles {
		data, ok := accounts[file]
		if !ok {
			continue
		}
		out, err := addAccountLine(data, baseAccounts(r)[file])
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		mode := int64(0o644)
		if strings.Contains(file, "shadow") {
			mode = 0o640
		}
		if err := lt.add(&tar.Header{Typeflag: tar.TypeReg, Name: file, Mode: mode, Size: int64(len(out)), ModTime: npmEpoch}, strings.NewReader(string(out))); err != nil {
			return err
		}
	}
	for name, content := range map[string]string{
		"etc/resolv.conf": "",
		"etc/hostname":    "",
		"etc/hosts":       "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
	} {
		if err := lt.add(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(content)), ModTime: npmEpoch}, strings.NewReader(content)); err != nil {
			return err
		}
	}
	home := strings.TrimPrefix(r.Home, "/")
	if err := lt.add(&tar.Header{Typeflag: tar.TypeDir, Name: home, Mode: 0o755, Uid: r.UID, Gid: r.GID, ModTime: npmEpoch}, nil); err != nil {
		return err
	}
	if err := lt.add(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp", Mode: 0o1777, ModTime: npmEpoch}, nil); err != nil {
		return err
	}
	if err := lt.add(&tar.Header{Typeflag: tar.TypeReg, Name: initMountpoint, Mode: 0o755, ModTime: npmEpoch}, nil); err != nil {
		return err
	}
	return lt.Close()
}

// writeManifest writes a manifest for cfg and layers and an index naming
// it ref.
func (l *layout) writeManifest(ref string, cfg ocispec.Descriptor, layers []ocispec.Descriptor) error {
	mf := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: layers}
	mf.SchemaVersion = 2
	mfDesc, err := l.writeJSON(ocispec.MediaTypeImageManifest, mf)
	if err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	mfDesc.Annotations = map[string]string{ocispec.AnnotationRefName: ref}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{mfDesc}}
	idx.SchemaVersion = 2
	raw, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(l.dir, ocispec.ImageIndexFile), raw, 0o644)
}

package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/driver"
)

// DefaultCacheDir holds the build cache when Options.CacheDir is empty.
const DefaultCacheDir = "/var/lib/isol8/cache"

// Options control Setup and Ensure.
type Options struct {
	// Force rebuilds even if up to date: the base root filesystem is made
	// again with mmdebstrap and every requested layer is rebuilt. Verified
	// npm tarballs and apt's .deb cache are reused.
	Force bool
	// Runtimes to build; empty means all of Runtimes.
	Runtimes []string
	// Progress receives human progress lines; nil discards them.
	Progress io.Writer
	// CacheDir holds apt's .deb cache, npm tarballs, the base root
	// filesystem and build logs; empty means DefaultCacheDir.
	CacheDir string
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
}

// Result reports one runtime of a Setup.
type Result struct {
	Runtime  string
	Image    string
	UpToDate bool
	Duration time.Duration
}

// Setup builds every requested runtime image into store, or reports it up to
// date: an image is up to date when it exists with the current build hash and
// sits on the current cached base layer. Progress lines follow the user
// contract ("[OK] python: Up to date", "[OK] python (15.1s)",
// "[ERR] python: <message>"). A failed runtime does not stop the others; the
// error joins every failure.
func Setup(ctx context.Context, store driver.Images, opts Options) ([]Result, error) {
	rts, err := selectRuntimes(opts.Runtimes)
	if err != nil {
		return nil, err
	}
	b := newBuilder(store, opts)
	defer b.release(ctx)

	return b.each(ctx, rts, b.setupOne)
}

// each makes the image of every runtime in rts with one, printing the
// contract's progress line for each. A failed runtime does not stop the
// others (a cancelled context does); the error joins every failure.
func (b *builder) each(ctx context.Context, rts []string, one func(context.Context, string) (Result, error)) ([]Result, error) {
	var (
		results []Result
		errs    []error
	)
	for _, rt := range rts {
		res, err := one(ctx, rt)
		if err != nil {
			b.printf("[ERR] %s: %v\n", rt, err)
			errs = append(errs, fmt.Errorf("%s: %w", rt, err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if res.UpToDate {
			b.printf("[OK] %s: Up to date\n", rt)
		} else {
			b.printf("[OK] %s (%.1fs)\n", rt, res.Duration.Seconds())
		}
		results = append(results, res)
	}
	return results, errors.Join(errs...)
}

// Ensure builds one runtime's image into store only if it is missing.
// opts.Force and opts.Runtimes are ignored.
func Ensure(ctx context.Context, store driver.Images, runtime string, opts Options) error {
	if _, err := selectRuntimes([]string{runtime}); err != nil {
		return err
	}
	opts.Force = false
	b := newBuilder(store, opts)
	defer b.release(ctx)

	st, err := b.status(ctx, runtime)
	if err != nil {
		return fmt.Errorf("ensure image %s: %w", Name(runtime), err)
	}
	if st.exists {
		return nil
	}
	if err := b.acquire(ctx); err != nil {
		return fmt.Errorf("ensure image %s: %w", Name(runtime), err)
	}
	if st, err = b.status(ctx, runtime); err == nil && st.exists { // built meanwhile
		return nil
	}
	start := time.Now()
	if err := b.build(ctx, runtime); err != nil {
		b.printf("[ERR] %s: %v\n", runtime, err)
		return fmt.Errorf("ensure image %s: %w", Name(runtime), err)
	}
	b.printf("[OK] %s (%.1fs)\n", runtime, time.Since(start).Seconds())
	return nil
}

// builder carries one Setup or Ensure call.
type builder struct {
	store    driver.Images
	force    bool
	cacheDir string
	out      io.Writer
	log      *slog.Logger
	base     baseRecipe
	recipes  map[string]recipe

	// set by acquire
	unlock func() error

	// the base for this call, resolved once
	baseResolved bool
	baseDesc     ocispec.Descriptor
	baseRoot     string
	baseErr      error
}

func newBuilder(store driver.Images, opts Options) *builder {
	b := &builder{
		store:    store,
		force:    opts.Force,
		cacheDir: opts.CacheDir,
		out:      opts.Progress,
		log:      opts.Logger,
		base:     defaultBase,
		recipes:  defaultRecipes,
	}
	if b.cacheDir == "" {
		b.cacheDir = DefaultCacheDir
	}
	if b.out == nil {
		b.out = io.Discard
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	return b
}

func (b *builder) printf(format string, args ...any) { fmt.Fprintf(b.out, format, args...) }

// Cache layout.
func (b *builder) aptCacheDir() string { return filepath.Join(b.cacheDir, "apt", "archives") }
func (b *builder) npmCacheDir() string { return filepath.Join(b.cacheDir, "npm") }
func (b *builder) logDir() string      { return filepath.Join(b.cacheDir, "logs") }
func (b *builder) workDir() string     { return filepath.Join(b.cacheDir, "work") }
func (b *builder) baseDir() string {
	return filepath.Join(b.cacheDir, "base", baseHash(b.base)[:16])
}

// acquire takes the cache lock (one build at a time per cache directory,
// across processes).
func (b *builder) acquire(ctx context.Context) error {
	if b.unlock != nil {
		return nil
	}
	if os.Geteuid() != 0 {
		return api.PermissionDeniedf("building images needs root")
	}
	if err := os.MkdirAll(b.cacheDir, 0o755); err != nil {
		return fmt.Errorf("create cache dir: %w", err)
	}
	unlock, err := lockDir(ctx, b.cacheDir, func() { b.printf("- waiting for another build to finish (lock %s)...\n", b.cacheDir) })
	if err != nil {
		return fmt.Errorf("lock cache dir: %w", err)
	}
	b.unlock = unlock
	return nil
}

// release drops the lock taken by acquire, if any.
func (b *builder) release(context.Context) {
	if b.unlock == nil {
		return
	}
	if err := b.unlock(); err != nil {
		b.log.Warn("unlock cache dir", "error", err)
	}
	b.unlock = nil
}

// imageStatus is what Setup needs to know about an existing image.
type imageStatus struct {
	exists  bool
	current bool   // build hash matches and the base layer is the cached one
	reason  string // why not current
}

// status reads what the backend knows of rt's image: its labels and layers.
// Readying an image to run (containerd's unpacking) is the driver's job.
func (b *builder) status(ctx context.Context, rt string) (imageStatus, error) {
	var st imageStatus
	info, err := b.store.ImageInfo(ctx, Name(rt))
	if errdefs.IsNotFound(err) {
		st.reason = "missing"
		return st, nil
	}
	if err != nil {
		return st, err
	}
	st.exists = true
	st.current = info.Labels[LabelBuildHash] == buildHash(b.base, b.recipes[rt])
	if !st.current {
		st.reason = "recipe changed"
	} else if want, ok := b.cachedBaseLayer(); ok {
		// After a forced base rebuild the other images are rebuilt on the
		// next Setup, so all of them keep sharing one base layer.
		st.current = len(info.Layers) > 0 && info.Layers[0] == want.Digest.String()
		if !st.current {
			st.reason = "base layer changed"
		}
	}
	return st, nil
}

// setupOne is Setup for one runtime.
func (b *builder) setupOne(ctx context.Context, rt string) (Result, error) {
	res := Result{Runtime: rt, Image: Name(rt)}
	start := time.Now()
	if !b.force {
		st, err := b.status(ctx, rt)
		if err != nil {
			return res, fmt.Errorf("inspect image: %w", err)
		}
		if st.current {
			res.UpToDate, res.Duration = true, time.Since(start)
			return res, nil
		}
	}
	if err := b.acquire(ctx); err != nil {
		return res, err
	}
	if !b.force {
		// Another process may have built it while we waited for the lock.
		st, err := b.status(ctx, rt)
		if err != nil {
			return res, fmt.Errorf("inspect image: %w", err)
		}
		if st.current {
			res.UpToDate, res.Duration = true, time.Since(start)
			return res, nil
		}
		b.printf("- %s: building (%s)\n", rt, st.reason)
	}
	// The base gets its own progress line and time.
	if _, _, err := b.resolveBase(ctx); err != nil {
		return res, err
	}
	start = time.Now()
	if err := b.build(ctx, rt); err != nil {
		return res, err
	}
	res.Duration = time.Since(start)
	return res, nil
}

// build makes one runtime's layers in a fresh OCI layout and imports it.
// The caller holds acquire.
func (b *builder) build(ctx context.Context, rt string) (retErr error) {
	r := b.recipes[rt]
	log := b.log.With("runtime", rt)
	baseDesc, baseRoot, err := b.resolveBase(ctx)
	if err != nil {
		return err
	}
	dir := filepath.Join(b.workDir(), rt+"-layout")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	defer func() {
		if err := os.RemoveAll(dir); err != nil {
			retErr = errors.Join(retErr, err)
		}
	}()
	lay, err := newLayout(dir)
	if err != nil {
		return err
	}
	if err := lay.linkBlob(baseDesc, b.baseBlobPath()); err != nil {
		return fmt.Errorf("base layer: %w", err)
	}
	layers := []ocispec.Descriptor{baseDesc}
	if len(r.Apt) > 0 {
		b.printf("- %s: installing %s with apt...\n", rt, strings.Join(r.Apt, " "))
		desc, err := buildAptLayer(ctx, aptBuild{
			baseRoot: baseRoot,
			work:     filepath.Join(b.workDir(), rt),
			debCache: b.aptCacheDir(),
			logFile:  filepath.Join(b.logDir(), rt+"-apt.log"),
			packages: r.Apt,
		}, func(write func(io.Writer) error) (ocispec.Descriptor, error) {
			return lay.writeBlob(ocispec.MediaTypeImageLayer, write)
		})
		if err != nil {
			return fmt.Errorf("build %s layer: %w", rt, err)
		}
		log.Info("apt layer built", "digest", desc.Digest, "size", desc.Size)
		layers = append(layers, desc)
	}
	if len(r.NPM) > 0 || len(r.Symlinks) > 0 || len(r.Files) > 0 {
		desc, err := b.npmLayer(ctx, lay, r)
		if err != nil {
			return fmt.Errorf("build %s layer: %w", rt, err)
		}
		log.Info("npm layer built", "digest", desc.Digest, "size", desc.Size)
		layers = append(layers, desc)
	}
	if _, err := lay.writeImage(Name(rt), imageConfig(b.base, layers), layers); err != nil {
		return err
	}
	b.printf("- %s: importing image...\n", rt)
	labels := map[string]string{LabelManaged: "true", LabelRuntime: rt, LabelBuildHash: buildHash(b.base, r)}
	if err := b.store.ImportImage(ctx, dir, Name(rt), labels); err != nil {
		return err
	}
	log.Info("image built", "image", Name(rt), "layers", len(layers))
	return nil
}

// npmLayer fetches the recipe's tarballs (a verified cached copy is used
// as is) and writes the layer made from them into lay.
func (b *builder) npmLayer(ctx context.Context, lay *layout, r recipe) (ocispec.Descriptor, error) {
	if len(r.NPM) > 0 && !npmArchSupported() {
		return ocispec.Descriptor{}, api.NotImplementedf("pinned npm packages are linux/amd64 only")
	}
	paths := map[npmPackage]string{}
	var missing []npmPackage
	for _, in := range r.NPM {
		p := filepath.Join(b.npmCacheDir(), in.Package.cacheFileName())
		if verifyFile(p, in.Package.Integrity) == nil {
			paths[in.Package] = p
		} else {
			missing = append(missing, in.Package)
		}
	}
	if len(missing) > 0 {
		registry := resolveRegistry(os.Getenv, npmConfigRegistry(ctx))
		var names []string
		for _, p := range missing {
			names = append(names, p.String())
		}
		b.printf("- %s: downloading %s from %s...\n", r.Runtime, strings.Join(names, ", "), registry)
		f := newNPMFetcher(b.npmCacheDir(), registry)
		for _, p := range missing {
			path, err := f.fetch(ctx, p)
			if err != nil {
				return ocispec.Descriptor{}, err
			}
			paths[p] = path
		}
	}
	b.printf("- %s: writing layer...\n", r.Runtime)
	return lay.writeBlob(ocispec.MediaTypeImageLayer, func(w io.Writer) error {
		return writeNPMLayer(w, r, func(p npmPackage) string { return paths[p] })
	})
}

// baseLayerFile records the base layer's descriptor beside the cached
// rootfs; baseBlobFile is the layer itself (an uncompressed tar).
const (
	baseLayerFile = "layer.json"
	baseBlobFile  = "layer.tar"
)

func (b *builder) baseBlobPath() string { return filepath.Join(b.baseDir(), baseBlobFile) }

// cachedBaseLayer returns the base layer recorded in the cache, if any.
func (b *builder) cachedBaseLayer() (ocispec.Descriptor, bool) {
	var desc ocispec.Descriptor
	raw, err := os.ReadFile(filepath.Join(b.baseDir(), baseLayerFile))
	if err != nil || json.Unmarshal(raw, &desc) != nil || desc.Digest == "" {
		return desc, false
	}
	return desc, true
}

// resolveBase returns the base layer (a blob file in the cache) and the
// cached base root filesystem, building them when missing or forced. The
// result is remembered for the rest of the call, so a forced Setup runs
// mmdebstrap once.
func (b *builder) resolveBase(ctx context.Context) (ocispec.Descriptor, string, error) {
	if b.baseResolved {
		return b.baseDesc, b.baseRoot, b.baseErr
	}
	b.baseResolved = true
	b.baseDesc, b.baseRoot, b.baseErr = b.resolveBaseOnce(ctx)
	if b.baseErr != nil {
		b.printf("[ERR] base: %v\n", b.baseErr)
		b.baseErr = fmt.Errorf("base: %w", b.baseErr)
	}
	return b.baseDesc, b.baseRoot, b.baseErr
}

func (b *builder) resolveBaseOnce(ctx context.Context) (ocispec.Descriptor, string, error) {
	dir := b.baseDir()
	root := filepath.Join(dir, "rootfs")
	if !b.force {
		if _, err := os.Stat(filepath.Join(root, initMountpoint)); err == nil {
			if desc, ok := b.cachedBaseLayer(); ok {
				if st, err := os.Stat(b.baseBlobPath()); err == nil && st.Size() == desc.Size {
					b.printf("- base: using cached rootfs %s\n", root)
					return desc, root, nil
				}
			}
			b.printf("- base: importing cached rootfs %s...\n", root)
			desc, err := b.pushBase(dir, root)
			return desc, root, err
		}
	}
	start := time.Now()
	b.printf("- base: building rootfs with mmdebstrap (log %s)...\n", filepath.Join(b.logDir(), "mmdebstrap.log"))
	if err := buildBaseRootfs(ctx, baseBuild{
		recipe:   b.base,
		dir:      dir,
		debCache: b.aptCacheDir(),
		logFile:  filepath.Join(b.logDir(), "mmdebstrap.log"),
	}); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	desc, err := b.pushBase(dir, root)
	if err != nil {
		return desc, "", err
	}
	pruneBaseDirs(filepath.Dir(dir), filepath.Base(dir), b.log)
	b.printf("[OK] base (%.1fs)\n", time.Since(start).Seconds())
	b.log.Info("base built", "digest", desc.Digest, "size", desc.Size, "duration", time.Since(start))
	return desc, root, nil
}

// pushBase tars the base rootfs into the cache's base blob and records its
// descriptor.
func (b *builder) pushBase(dir, root string) (ocispec.Descriptor, error) {
	// A one-blob scratch layout gives the tar its digest while it is
	// written; the blob is then moved beside the rootfs.
	scratch := filepath.Join(dir, "layer.tmp")
	if err := os.RemoveAll(scratch); err != nil {
		return ocispec.Descriptor{}, err
	}
	defer os.RemoveAll(scratch)
	lay, err := newLayout(scratch)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc, err := lay.writeBlob(ocispec.MediaTypeImageLayer, func(w io.Writer) error {
		return writeDirTar(w, root, "")
	})
	if err != nil {
		return desc, fmt.Errorf("import base layer: %w", err)
	}
	if err := os.Rename(lay.blobPath(desc.Digest), filepath.Join(dir, baseBlobFile)); err != nil {
		return desc, err
	}
	raw, err := json.Marshal(desc)
	if err != nil {
		return desc, err
	}
	if err := writeFileAtomic(filepath.Join(dir, baseLayerFile), raw); err != nil {
		return desc, err
	}
	return desc, nil
}

// writeFileAtomic replaces name with data.
func writeFileAtomic(name string, data []byte) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// initMountpoint is the empty file the engine bind-mounts its init onto;
// its presence also marks a finished base rootfs.
const initMountpoint = ".isol8-init"

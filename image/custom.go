package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/driver"
)

// Labels of custom images. The org.isol8.* keys are the ones the reference
// implementation reads, so images and tooling interoperate; isol8.custom
// tells custom images from the runtime images.
const (
	LabelCustom     = "isol8.custom"
	LabelDepsHash   = "org.isol8.deps.hash"
	LabelOrgRuntime = "org.isol8.runtime"
	LabelDeps       = "org.isol8.dependencies"
	LabelSetup      = "org.isol8.setup"
)

// CustomRecipe describes a custom image: a runtime image plus packages
// installed into the image and a setup script that runs (as the image's
// own setup script) before every execution in it.
type CustomRecipe struct {
	Tag      string
	Runtime  string
	Packages []string // normalised and validated by the caller
	Setup    string
}

// customRuntimes are the runtimes a custom image can start from. The
// agent image takes no custom builds, as in the reference.
var customRuntimes = []string{"python", "node", "bun", "deno", "bash"}

// tagRE is what a custom image name may look like: a lower-case name with
// optional registry host and path, and an optional tag.
var tagRE = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:[:.][0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$`)

// ValidateTag checks a custom image name. The runtime images' own names
// (isol8:python, ...) are refused: a custom build must never replace them.
func ValidateTag(tag string) error {
	if len(tag) > 255 || !tagRE.MatchString(tag) {
		return api.InvalidArgumentf("Invalid image tag: %q. Use a name like my-python-ml or registry.local/team/img:v1 (lower-case name, optional :tag).", tag)
	}
	for _, rt := range append(slices.Clone(Runtimes), "agent") {
		if tag == Name(rt) {
			return api.InvalidArgumentf("Invalid image tag: %q is the base image of runtime %s; choose another name.", tag, rt)
		}
	}
	return nil
}

// Validate checks the recipe as a build would.
func (r CustomRecipe) Validate() error {
	if r.Runtime == "agent" {
		return api.NotImplementedf("Custom images of the agent runtime are not supported yet (bases: %s)", strings.Join(customRuntimes, ", "))
	}
	if !slices.Contains(customRuntimes, r.Runtime) {
		return api.InvalidArgumentf("Unknown runtime: %s", r.Runtime)
	}
	if err := ValidateTag(r.Tag); err != nil {
		return err
	}
	if len(r.Packages) == 0 && strings.TrimSpace(r.Setup) == "" {
		return api.InvalidArgumentf("No packages or setup script specified. Use --install <package> or --setup <command>.")
	}
	// Refused before a build sandbox downloads anything: only these
	// runtimes' installs have a place in an image (installRoots).
	if len(r.Packages) > 0 && r.Runtime != "python" && r.Runtime != "node" {
		return api.NotImplementedf("installing %s packages into images is not supported yet (python and node are); use --setup for %s", r.Runtime, r.Runtime)
	}
	// The recipe travels in labels, which backends bound (containerd: 4096
	// bytes per label, key included).
	if len(r.Setup) > MaxLabelValue {
		return api.InvalidArgumentf("Setup script too long for a custom image: %d bytes, at most %d (put longer scripts in a file the script runs)", len(r.Setup), MaxLabelValue)
	}
	if n := len(strings.Join(r.Packages, ",")); n > MaxLabelValue {
		return api.InvalidArgumentf("Package list too long for a custom image: %d bytes, at most %d", n, MaxLabelValue)
	}
	return nil
}

// MaxLabelValue bounds a recipe label's value (setup script, package list).
const MaxLabelValue = 4000

// DepsHash is the recipe's identity for the up-to-date check: sha256 over
// the runtime, each package and, when set, "setup:" and the script.
func (r CustomRecipe) DepsHash() string {
	h := sha256.New()
	h.Write([]byte(r.Runtime))
	for _, p := range r.Packages {
		h.Write([]byte(p))
	}
	if r.Setup != "" {
		h.Write([]byte("setup:"))
		h.Write([]byte(r.Setup))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Labels are the labels a custom image of r carries.
func (r CustomRecipe) Labels() map[string]string {
	l := map[string]string{
		LabelManaged:    "true",
		LabelCustom:     "true",
		LabelRuntime:    r.Runtime,
		LabelOrgRuntime: r.Runtime,
		LabelDeps:       strings.Join(r.Packages, ","),
		LabelDepsHash:   r.DepsHash(),
	}
	if r.Setup != "" {
		l[LabelSetup] = r.Setup
	}
	return l
}

// BuildScratchSize bounds what a build's install step may write: the
// build directory is a tmpfs of this size.
const BuildScratchSize = 2 << 30

// Populate installs a recipe's packages into dir, a host directory that a
// build sandbox of the runtime image sees as its /sandbox: installs land
// where the sandbox's own installs would (~/.local for pip, node_modules
// for npm), and the build moves them into the image's system locations.
type Populate func(ctx context.Context, dir string) error

// CustomResult reports one custom build.
type CustomResult struct {
	Tag      string
	UpToDate bool
	Duration time.Duration
}

// BuildCustom builds the custom image r into store on top of the runtime
// image (built first when missing), unless an image of that tag already
// carries r's deps hash and opts.Force is unset. Packages are installed
// by populate; the setup script is recorded in a label and runs before
// each execution. An existing image of that tag that isol8 did not build
// as a custom image is never replaced.
func BuildCustom(ctx context.Context, store driver.Images, r CustomRecipe, populate Populate, opts Options) (CustomResult, error) {
	res := CustomResult{Tag: r.Tag}
	start := time.Now()
	if err := r.Validate(); err != nil {
		return res, err
	}
	existing, err := store.ImageInfo(ctx, r.Tag)
	switch {
	case errdefs.IsNotFound(err):
	case err != nil:
		return res, fmt.Errorf("inspect image %s: %w", r.Tag, err)
	case existing.Labels[LabelCustom] != "true" || existing.Labels[LabelManaged] != "true":
		return res, api.FailedPreconditionf("image %s exists and is not an isol8 custom image; choose another tag", r.Tag)
	case !opts.Force && existing.Labels[LabelDepsHash] == r.DepsHash():
		res.UpToDate, res.Duration = true, time.Since(start)
		return res, nil
	}
	if err := Ensure(ctx, store, r.Runtime, opts); err != nil {
		return res, err
	}
	base, err := store.ImageInfo(ctx, Name(r.Runtime))
	if err != nil {
		return res, fmt.Errorf("inspect base image: %w", err)
	}
	_, canExport := store.(driver.LayerExporter)
	if !canExport && (len(base.LayerBlobs) == 0 || len(base.LayerBlobs) != len(base.Layers)) {
		return res, fmt.Errorf("base image %s: the backend reports no layer descriptors", Name(r.Runtime))
	}
	b := newBuilder(store, opts)
	if err := os.MkdirAll(b.workDir(), 0o755); err != nil {
		return res, err
	}
	work, err := os.MkdirTemp(b.workDir(), "custom-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(work)
	lay, err := newLayout(filepath.Join(work, "layout"))
	if err != nil {
		return res, err
	}
	layers, err := baseLayers(ctx, store, Name(r.Runtime), base, lay.dir)
	if err != nil {
		return res, err
	}
	if len(r.Packages) > 0 {
		if populate == nil {
			return res, api.NotImplementedf("installing packages into images is not available in this build")
		}
		dir := filepath.Join(work, "sandbox")
		if err := os.Mkdir(dir, 0o755); err != nil {
			return res, err
		}
		unmount, err := mountScratch(dir, BuildScratchSize)
		if err != nil {
			return res, err
		}
		defer func() {
			if err := unmount(); err != nil {
				b.log.Warn("unmount build directory", "dir", dir, "error", err)
			}
		}()
		b.printf("- %s: installing %s...\n", r.Tag, strings.Join(r.Packages, ", "))
		if err := populate(ctx, dir); err != nil {
			return res, fmt.Errorf("install packages: %w", err)
		}
		desc, err := lay.writeBlob(ocispec.MediaTypeImageLayer, func(w io.Writer) error {
			return writeInstallLayer(w, dir, r.Runtime)
		})
		if err != nil {
			return res, fmt.Errorf("write package layer: %w", err)
		}
		layers = append(layers, desc)
	}
	cfg := imageConfig(b.base, layers)
	cfg.Config.Labels = r.Labels()
	cfg.Created = &start
	if _, err := lay.writeImage(r.Tag, cfg, layers); err != nil {
		return res, err
	}
	if err := store.ImportImage(ctx, lay.dir, r.Tag, r.Labels()); err != nil {
		return res, err
	}
	res.Duration = time.Since(start)
	return res, nil
}

// baseLayers returns the descriptors of the base image's layers for a
// custom image's manifest: the backend's own (LayerBlobs) where it has
// them, else the layers the backend exports into the layout at dir
// (driver.LayerExporter). The new config's diff IDs are its layers'
// digests (imageConfig), so exported layers must be the base's diff IDs.
func baseLayers(ctx context.Context, store driver.Images, name string, base driver.ImageInfo, dir string) ([]ocispec.Descriptor, error) {
	if len(base.LayerBlobs) > 0 && len(base.LayerBlobs) == len(base.Layers) {
		return slices.Clone(base.LayerBlobs), nil
	}
	exp, ok := store.(driver.LayerExporter)
	if !ok {
		return nil, fmt.Errorf("base image %s: the backend reports no layer descriptors", name)
	}
	descs, err := exp.ExportLayers(ctx, name, dir)
	if err != nil {
		return nil, fmt.Errorf("base image %s: %w", name, err)
	}
	if len(descs) != len(base.Layers) {
		return nil, fmt.Errorf("base image %s: exported %d layers, the image has %d", name, len(descs), len(base.Layers))
	}
	for i, d := range descs {
		if d.Digest.String() != base.Layers[i] {
			return nil, fmt.Errorf("base image %s: exported layer %d is %s, want diff ID %s (compressed or changed meanwhile)", name, i, d.Digest, base.Layers[i])
		}
	}
	return descs, nil
}

// CustomImage is one custom image as list-custom shows it.
type CustomImage struct {
	Name     string
	Runtime  string
	Packages []string
	Setup    string
	Size     int64
	Created  time.Time
}

// ListCustom returns the custom images isol8 built, sorted by name.
func ListCustom(ctx context.Context, store driver.Images) ([]CustomImage, error) {
	names, err := store.ListImages(ctx, map[string]string{LabelManaged: "true", LabelCustom: "true"})
	if err != nil {
		return nil, err
	}
	var out []CustomImage
	for _, n := range names {
		info, err := store.ImageInfo(ctx, n)
		if errdefs.IsNotFound(err) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, customImage(info))
	}
	slices.SortFunc(out, func(a, b CustomImage) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func customImage(info driver.ImageInfo) CustomImage {
	c := CustomImage{Name: info.Name, Runtime: info.Labels[LabelOrgRuntime], Setup: info.Labels[LabelSetup], Size: info.Size, Created: info.Created}
	if d := info.Labels[LabelDeps]; d != "" {
		c.Packages = strings.Split(d, ",")
	}
	return c
}

// FindCustom picks the custom image for runtime whose packages cover pkgs
// (normalised): an exact match wins, else the last image (by name) whose
// packages are a superset. ok is false when none covers them.
func FindCustom(ctx context.Context, store driver.Images, runtime string, pkgs []string) (img CustomImage, ok bool, err error) {
	if len(pkgs) == 0 {
		return img, false, nil
	}
	names, err := store.ListImages(ctx, map[string]string{LabelOrgRuntime: runtime})
	if err != nil {
		return img, false, fmt.Errorf("list custom images: %w", err)
	}
	for _, n := range names {
		info, err := store.ImageInfo(ctx, n)
		if err != nil {
			if errdefs.IsNotFound(err) {
				continue
			}
			return img, false, fmt.Errorf("inspect image %s: %w", n, err)
		}
		if _, has := info.Labels[LabelDeps]; !has {
			continue
		}
		c := customImage(info)
		if coversAll(c.Packages, pkgs) {
			img, ok = c, true
			if len(c.Packages) == len(pkgs) {
				return img, true, nil
			}
		}
	}
	return img, ok, nil
}

func coversAll(have, want []string) bool {
	for _, p := range want {
		if !slices.Contains(have, p) {
			return false
		}
	}
	return true
}

// SetupLabel returns the setup script recorded on an image, "" when it has
// none or cannot be inspected (as the reference, which ignores errors).
func SetupLabel(ctx context.Context, store driver.Images, name string) string {
	info, err := store.ImageInfo(ctx, name)
	if err != nil {
		return ""
	}
	return info.Labels[LabelSetup]
}

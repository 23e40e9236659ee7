package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/containerd/errdefs"

	"github.com/isol8/isol8/image"
	"github.com/isol8/isol8/registry"
	"github.com/isol8/isol8/runtimes"
)

// CustomImage is one custom image as listed (see image.CustomImage).
type CustomImage = image.CustomImage

// BuildOptions describe one custom image build.
type BuildOptions struct {
	Tag      string
	Runtime  string
	Packages []string
	Setup    string
	// Force rebuilds even when the image of Tag has this recipe.
	Force bool
	// Registries are where the build's installs fetch from; nil means the
	// host's own configuration (registry.FromHost).
	Registries *registry.Config
}

// BuildResult reports a custom build.
type BuildResult = image.CustomResult

// recipe normalises and validates o.
func (o BuildOptions) recipe() (image.CustomRecipe, error) {
	r := image.CustomRecipe{Tag: o.Tag, Runtime: o.Runtime, Packages: runtimes.NormalizePackages(o.Packages), Setup: o.Setup}
	if err := runtimes.ValidatePackages(r.Packages); err != nil {
		return r, invalid(err)
	}
	if err := r.Validate(); err != nil {
		return r, err
	}
	return r, nil
}

// BuildImage builds a custom image through the engine's host (see
// Host.BuildImage).
func (e *Engine) BuildImage(ctx context.Context, o BuildOptions) (BuildResult, error) {
	return e.host.BuildImage(ctx, o)
}

// BuildImage builds the custom image o describes on top of its runtime's
// image (built first when missing), or reports it up to date.
func (h *Host) BuildImage(ctx context.Context, o BuildOptions) (BuildResult, error) {
	r, err := o.recipe()
	if err != nil {
		return BuildResult{Tag: o.Tag}, err
	}
	ctx, leave, err := h.enterStarted(ctx)
	if err != nil {
		return BuildResult{Tag: o.Tag}, err
	}
	defer leave()
	h.imageMu.Lock()
	defer h.imageMu.Unlock()
	return image.BuildCustom(ctx, h.drv, r, h.buildInstaller(r, o.Registries), image.Options{Force: o.Force, Progress: h.opts.Progress, Logger: h.log})
}

// CheckPrebuilt validates prebuilt image entries (the config's
// prebuiltImages) before anything is built; the error names the entry.
func CheckPrebuilt(list []BuildOptions) error {
	seen := map[string]bool{}
	for i, o := range list {
		if _, err := o.recipe(); err != nil {
			return invalidf("prebuiltImages[%d] (tag %q): %v", i, o.Tag, err)
		}
		if seen[o.Tag] {
			return invalidf("prebuiltImages[%d]: tag %q appears twice", i, o.Tag)
		}
		seen[o.Tag] = true
	}
	return nil
}

// setupPrebuilt builds the prebuilt images of o after the runtime images,
// with the caller holding imageMu. Lines: "[OK] <tag> (already exists)",
// "[OK] <tag> (<runtime>: <pkg>, ...)", "[ERR] <tag>: <message>".
func (h *Host) setupPrebuilt(ctx context.Context, o SetupOptions) error {
	if err := CheckPrebuilt(o.Prebuilt); err != nil {
		return err
	}
	out := h.opts.Progress
	if out == nil {
		out = io.Discard
	}
	var errs []error
	for _, b := range o.Prebuilt {
		r, _ := b.recipe()
		if !o.Force {
			if _, err := h.drv.ImageInfo(ctx, r.Tag); err == nil {
				fmt.Fprintf(out, "[OK] %s (already exists)\n", r.Tag)
				continue
			} else if !errdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("%s: %w", r.Tag, err))
				continue
			}
		}
		_, err := image.BuildCustom(ctx, h.drv, r, h.buildInstaller(r, b.Registries), image.Options{Force: true, Progress: out, Logger: h.log})
		if err != nil {
			fmt.Fprintf(out, "[ERR] %s: %v\n", r.Tag, err)
			errs = append(errs, fmt.Errorf("Failed to build prebuilt image %s: %w", r.Tag, err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		fmt.Fprintf(out, "[OK] %s (%s: %s)\n", r.Tag, r.Runtime, strings.Join(r.Packages, ", "))
	}
	return errors.Join(errs...)
}

// buildInstaller is where a custom build's packages get installed: a
// sandbox of the runtime image whose /sandbox is the build directory runs
// a request with the packages, so the same install step as a request's
// installPackages writes them there (pip's ~/.local, npm's node_modules)
// and the image builder moves them into the image. The sandbox is on the
// filtered network with the registries' hosts as its only allowed
// destinations, as a request's installs are.
func (h *Host) buildInstaller(r image.CustomRecipe, reg *registry.Config) image.Populate {
	return func(ctx context.Context, dir string) error {
		if reg == nil {
			cfg := h.registries()
			reg = &cfg
		}
		o := InstallNetwork(Options{Registries: reg}, false, reg.Patterns(r.Runtime))
		return h.buildRun(ctx, dir, Request{Runtime: r.Runtime, Cmd: "true", InstallPackages: r.Packages}, o)
	}
}

// Bounds of a build sandbox: installs compile and download more than a
// request usually does.
const (
	buildTimeoutMs   = 10 * 60 * 1000
	buildMemoryLimit = "2g"
	buildPidsLimit   = 256
)

// buildRun runs req in a sandbox of the runtime image with dir as its
// /sandbox, on o's network (and registries), with no pool (the sandbox is
// never reused), and fails unless the command succeeds. The request's
// packages are installed by the install step, into dir.
func (h *Host) buildRun(ctx context.Context, dir string, req Request, o Options) error {
	e, err := h.NewEngine(Options{
		Network: o.Network, NetworkFilter: o.NetworkFilter, Registries: o.Registries,
		PoolSize: &PoolSize{}, TimeoutMs: buildTimeoutMs, MemoryLimit: buildMemoryLimit,
		PidsLimit: buildPidsLimit, buildDir: dir,
	})
	if err != nil {
		return err
	}
	defer e.Stop(context.WithoutCancel(ctx))
	res, err := e.Execute(ctx, req)
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("build step exited with %d: %s", res.ExitCode, strings.TrimSpace(res.Stderr))
	}
	return nil
}

// ListCustomImages lists the custom images (see image.ListCustom).
func (h *Host) ListCustomImages(ctx context.Context) ([]CustomImage, error) {
	ctx, leave, err := h.enterStarted(ctx)
	if err != nil {
		return nil, err
	}
	defer leave()
	return image.ListCustom(ctx, h.drv)
}

// customChoice is what image resolution decided before a request is
// planned: the image to use instead of the runtime's and its image-level
// setup script.
type customChoice struct {
	image string
	setup string
}

// resolveCustom is image resolution before planning: with the engine's
// Image option, that image's recorded setup script becomes the image-level
// setup; else requested packages that a custom image of the runtime covers
// select that image (its setup script too) and are dropped from the
// request, as they need no install. Packages no image covers stay, for
// the install step.
func (e *Engine) resolveCustom(ctx context.Context, req Request) (Request, customChoice, error) {
	var c customChoice
	pkgs := runtimes.NormalizePackages(req.InstallPackages)
	if e.opts.Image == "" && len(pkgs) == 0 {
		return req, c, nil
	}
	ctx, leave, err := e.enter(ctx)
	if err != nil {
		return req, c, err
	}
	defer leave()
	if err := e.Start(ctx); err != nil {
		return req, c, err
	}
	if e.opts.Image != "" {
		c.setup = image.SetupLabel(ctx, e.host.drv, e.opts.Image)
		return req, c, nil
	}
	if runtimes.ValidatePackages(pkgs) != nil {
		return req, c, nil // planning reports it
	}
	img, ok, err := image.FindCustom(ctx, e.host.drv, req.Runtime, pkgs)
	if err != nil || !ok {
		return req, c, err
	}
	e.log.Debug("custom image", "image", img.Name, "runtime", req.Runtime, "packages", strings.Join(pkgs, ","))
	req.InstallPackages = nil
	c.image, c.setup = img.Name, img.Setup
	return req, c, nil
}

// planCustom is plan with image resolution first.
func (e *Engine) planCustom(ctx context.Context, req Request) (*plan, error) {
	req, c, err := e.resolveCustom(ctx, req)
	if err != nil {
		return nil, err
	}
	p, err := e.plan(req)
	if err != nil {
		return nil, err
	}
	if c.image != "" {
		p.image = c.image
	}
	p.imageSetup = c.setup
	return p, nil
}

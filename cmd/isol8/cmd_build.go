package main

// `isol8 build` and `isol8 list-custom`: custom images.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/isol8/isol8"
	"github.com/isol8/isol8/engine"
	"github.com/isol8/isol8/runtimes"
)

// buildRuntimes is the order the build error lists runtimes in.
var buildRuntimes = []string{"python", "node", "bun", "deno", "bash", "agent"}

// buildFlags holds `isol8 build`'s flags.
type buildFlags struct {
	base    string
	tag     string
	install []string
	setup   []string
	force   bool
}

func (a *app) buildCommand(g *globals) *cobra.Command {
	f := &buildFlags{}
	c := &cobra.Command{
		Use:   "build",
		Short: "Build a custom image with packages or a setup script baked in",
		Long: "Build a custom image from a runtime's image with packages installed into the image\n" +
			"and/or a setup script that runs before every execution in it. The same recipe again\n" +
			"is a no-op (\"Up to date\") unless --force. Run it with --image <tag>, or let requests\n" +
			"whose packages it covers pick it.",
		Args:        maxArgs(0),
		Annotations: needsConfig,
		RunE: func(c *cobra.Command, _ []string) error {
			spec, err := a.validateBuild(c, f)
			if err != nil {
				return err
			}
			return a.build(c, g, spec)
		},
	}
	fs := c.Flags()
	strFlag(fs, &f.base, "base", "", "runtime", "base runtime: python, node, bun, deno or bash (required)")
	strFlag(fs, &f.tag, "tag", "", "name", "tag of the built image (required)")
	strsFlag(fs, &f.install, "install", "", "package", "package to install (repeatable, comma-separated)")
	strsFlag(fs, &f.setup, "setup", "", "command", "setup script, or a local file holding one (repeatable)")
	fs.BoolVar(&f.force, "force", false, "rebuild even if an up-to-date image exists")
	return c
}

// buildSpec is a validated `isol8 build` request.
type buildSpec struct {
	runtime  string
	tag      string
	packages []string
	setup    string
	force    bool
}

// validateBuild checks build's options in the reference order.
func (a *app) validateBuild(c *cobra.Command, f *buildFlags) (*buildSpec, error) {
	for _, name := range []string{"base", "tag"} {
		if !c.Flags().Changed(name) {
			return nil, usageErrorf("required option '%s' not specified", flagSpec(c.Flags().Lookup(name)))
		}
	}
	if !slices.Contains(buildRuntimes, f.base) {
		return nil, errf("Invalid runtime: %s. Expected one of: %s", f.base, strings.Join(buildRuntimes, ", "))
	}
	var pkgs []string
	for _, v := range f.install {
		pkgs = append(pkgs, strings.Split(v, ",")...)
	}
	pkgs = runtimes.NormalizePackages(pkgs)
	setup := ""
	if len(f.setup) > 0 {
		s, err := a.setupScript(f.setup)
		if err != nil {
			return nil, err
		}
		setup = s
	}
	if len(pkgs) == 0 && strings.TrimSpace(setup) == "" {
		return nil, errf("No packages or setup script specified. Use --install <package> or --setup <command>.")
	}
	if err := runtimes.ValidatePackages(pkgs); err != nil {
		return nil, errf("%s", err)
	}
	return &buildSpec{runtime: f.base, tag: f.tag, packages: pkgs, setup: setup, force: f.force}, nil
}

// build is `isol8 build` after validation.
func (a *app) build(c *cobra.Command, g *globals, spec *buildSpec) error {
	return a.adminRun(c.Context(), g, func(ctx context.Context, eng isol8.Admin, fail func(error) error) error {
		return a.buildWith(ctx, eng, fail, spec)
	})
}

func (a *app) buildWith(ctx context.Context, eng isol8.Admin, fail func(error) error, spec *buildSpec) error {
	info, err := eng.Backend(ctx)
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(a.stderr, "[OK] Backend: %s %s at %s\n", info.Name, info.Version, info.Address)
	res, err := eng.BuildImage(ctx, engine.BuildOptions{
		Tag: spec.tag, Runtime: spec.runtime, Packages: spec.packages, Setup: spec.setup, Force: spec.force,
	})
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(a.stderr, "[OK] Base image ready: %s\n", spec.runtime)
	if res.UpToDate {
		fmt.Fprintf(a.stderr, "[OK] %s: Up to date\n", spec.tag)
	} else {
		fmt.Fprintf(a.stderr, "[OK] Built image: %s (%.1fs)\n", spec.tag, res.Duration.Seconds())
	}
	fmt.Fprintln(a.stdout)
	fmt.Fprintln(a.stdout, "[DONE] Custom image build complete!")
	fmt.Fprintf(a.stdout, "       Runtime: %s\n", spec.runtime)
	if len(spec.packages) > 0 {
		fmt.Fprintf(a.stdout, "       Packages: %s\n", strings.Join(spec.packages, ", "))
	}
	if spec.setup != "" {
		fmt.Fprintf(a.stdout, "       Setup: %s\n", firstLine(spec.setup))
	}
	fmt.Fprintf(a.stdout, "       Image: %s\n", spec.tag)
	return nil
}

// firstLine is a script's first line, with " ..." when more follow.
func firstLine(s string) string {
	first, rest, more := strings.Cut(s, "\n")
	if more && strings.TrimSpace(rest) != "" {
		return first + " ..."
	}
	return first
}

func (a *app) listCustomCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:         "list-custom",
		Short:       "List custom isol8 images",
		Args:        maxArgs(0),
		Annotations: needsConfig,
		RunE: func(c *cobra.Command, _ []string) error {
			return a.adminRun(c.Context(), g, func(ctx context.Context, eng isol8.Admin, done func(error) error) error {
				list, err := eng.ListCustomImages(ctx)
				if err != nil {
					return done(err)
				}
				fmt.Fprint(a.stdout, customListing(list))
				return nil
			})
		},
	}
}

// customListing renders list-custom's output.
func customListing(list []engine.CustomImage) string {
	if len(list) == 0 {
		return "No custom isol8 images found.\n"
	}
	var b strings.Builder
	b.WriteString("\n  ── Available Custom Images ──\n\n")
	for _, img := range list {
		rt := img.Runtime
		if rt == "" {
			rt = "unknown"
		}
		deps := strings.Join(img.Packages, ", ")
		if deps == "" {
			deps = "(none)"
		}
		fmt.Fprintf(&b, "  📦 %s\n", img.Name)
		fmt.Fprintf(&b, "     Runtime:      %s\n", rt)
		fmt.Fprintf(&b, "     Dependencies: %s\n", deps)
		if img.Setup != "" {
			fmt.Fprintf(&b, "     Setup:        %s\n", firstLine(img.Setup))
		}
		fmt.Fprintf(&b, "     Size:         %s\n", humanBytes(img.Size))
		if !img.Created.IsZero() {
			fmt.Fprintf(&b, "     Created:      %s\n", img.Created.Local().Format(time.DateTime))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// humanBytes renders a size in MB with one decimal (KB below one MB).
func humanBytes(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%.1f KB", float64(n)/1024)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
}

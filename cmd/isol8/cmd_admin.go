package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/isol8/isol8"
	"github.com/isol8/isol8/config"
	"github.com/isol8/isol8/engine"
	"github.com/isol8/isol8/image"
)

// adminEngine builds the admin side for setup and cleanup: only the wiring
// and the settings that affect them come from the config.
func (a *app) adminEngine(g *globals) (isol8.Admin, engine.Options, error) {
	o := engine.Options{Debug: g.debugOn(), MaxConcurrent: g.cfg.MaxConcurrent, PoolSize: &engine.PoolSize{}}
	a.wire(&o, g)
	eng, err := a.newAdmin(o)
	if err != nil {
		return nil, o, errf("%s", err)
	}
	return eng, o, nil
}

// adminRun runs fn on an admin engine with a context that the first SIGINT
// or SIGTERM cancels. fn ends its steps through done: with a signal caught
// it is the signal's exit code, else "[ERR] <err>" (nil for nil).
func (a *app) adminRun(ctx context.Context, g *globals, fn func(ctx context.Context, eng isol8.Admin, done func(error) error) error) error {
	ctx, caught, release := a.interruptible(ctx)
	defer release()
	eng, o, err := a.adminEngine(g)
	if err != nil {
		return err
	}
	defer a.stopEngine(eng, o.Logger)
	return fn(ctx, eng, func(err error) error {
		if s := caught(); s != nil {
			return exitCode(signalExitCode(s))
		}
		if err != nil {
			return errf("%s", err)
		}
		return nil
	})
}

func (a *app) setupCommand(g *globals) *cobra.Command {
	var force bool
	var source string
	c := &cobra.Command{
		Use:   "setup",
		Short: "Build the runtime images",
		Long: "Build the base images of every runtime (python, node, bun, deno, bash, agent) in\n" +
			"containerd (Docker with --driver docker), or confirm they are up to date.\n" +
			"Progress is printed on stderr.",
		Args:        maxArgs(0),
		Annotations: needsConfig,
		RunE: func(c *cobra.Command, _ []string) error {
			prebuilt := prebuiltOptions(g.cfg.PrebuiltImages)
			if err := engine.CheckPrebuilt(prebuilt); err != nil {
				return errf("%s in %s", err, g.cfg.Path())
			}
			registry, err := setupSource(c, source, g.cfg)
			if err != nil {
				return err
			}
			return a.adminRun(c.Context(), g, func(ctx context.Context, eng isol8.Admin, done func(error) error) error {
				info, err := eng.Backend(ctx)
				if err != nil {
					return done(err)
				}
				fmt.Fprintf(a.stderr, "[OK] Backend: %s %s at %s\n", info.Name, info.Version, info.Address)
				if err := done(eng.SetupImages(ctx, engine.SetupOptions{Force: force, Prebuilt: prebuilt, Registry: registry})); err != nil {
					return err
				}
				fmt.Fprintln(a.stdout)
				fmt.Fprintln(a.stdout, "[DONE] Setup complete!")
				return nil
			})
		},
	}
	c.Flags().BoolVar(&force, "force", false, "rebuild the images even if they are up to date")
	strFlag(c.Flags(), &source, "source", "", "build|registry",
		"where the runtime images come from: build them, or pull the bases named in config images.registry (default: config images.source, else build)")
	return c
}

// setupSource resolves setup's image source (--source, else the config's
// images.source) and, for "registry", checks the config's references.
func setupSource(c *cobra.Command, flag string, cfg *config.Config) (map[string]string, error) {
	source := cfg.Images.Source
	if c.Flags().Changed("source") {
		source = flag
	}
	switch source {
	case "", "build":
		return nil, nil
	case "registry":
		if err := image.CheckRegistryRefs(cfg.Images.Registry); err != nil {
			where := cfg.Path()
			if where == "" {
				where = "the config (no config file found)"
			}
			return nil, errf("setup --source registry: %s in %s", err, where)
		}
		return cfg.Images.Registry, nil
	}
	return nil, errf("Invalid --source: %s. Expected one of: build, registry", source)
}

func (a *app) cleanupCommand(g *globals) *cobra.Command {
	var force, images bool
	c := &cobra.Command{
		Use:   "cleanup",
		Short: "Remove isol8 containers (and images)",
		Long: "List every container isol8 created (running or stopped), and with --images every\n" +
			"isol8 image, then remove them after confirmation. Containers whose creating process\n" +
			"still runs (a server's pool, a run in progress) are listed as skipped and never removed.",
		Args:        maxArgs(0),
		Annotations: needsConfig,
		RunE: func(c *cobra.Command, _ []string) error {
			return a.cleanup(c.Context(), g, force, images)
		},
	}
	c.Flags().BoolVar(&force, "force", false, "remove without asking for confirmation (containers in use are still skipped)")
	c.Flags().BoolVar(&images, "images", false, "also remove isol8 images")
	return c
}

// imageLines renders the images of a cleanup as "<id12> | <tags>", one line
// per image id (names without a known id stand alone).
func imageLines(rep *engine.CleanupReport) []string {
	var order []string
	tags := map[string][]string{}
	for _, name := range rep.Images {
		id := short12(rep.ImageIDs[name])
		if id == "" {
			order = append(order, name)
			continue
		}
		if _, ok := tags[id]; !ok {
			order = append(order, id)
		}
		tags[id] = append(tags[id], name)
	}
	lines := make([]string, 0, len(order))
	for _, k := range order {
		if t, ok := tags[k]; ok {
			lines = append(lines, k+" | "+strings.Join(t, ", "))
		} else {
			lines = append(lines, k)
		}
	}
	return lines
}

func short12(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// cleanup is `isol8 cleanup`.
func (a *app) cleanup(ctx context.Context, g *globals, force, images bool) error {
	return a.adminRun(ctx, g, func(ctx context.Context, eng isol8.Admin, fail func(error) error) error {
		return a.cleanupWith(ctx, eng, fail, force, images)
	})
}

func (a *app) cleanupWith(ctx context.Context, eng isol8.Admin, fail func(error) error, force, images bool) error {

	found, err := eng.Cleanup(ctx, engine.CleanupOptions{Images: images, DryRun: true})
	if err != nil {
		return fail(err)
	}
	a.printInUse(found.InUse)
	if len(found.Containers) == 0 && (!images || len(found.Images) == 0) {
		if images {
			fmt.Fprintln(a.stdout, "No isol8 containers or images found")
		} else {
			fmt.Fprintln(a.stdout, "No isol8 containers found")
		}
		return nil
	}
	if images {
		fmt.Fprintf(a.stdout, "Found %d isol8 container(s) and %d image(s)\n", len(found.Containers), len(found.Images))
	} else {
		fmt.Fprintf(a.stdout, "Found %d isol8 container(s)\n", len(found.Containers))
	}
	for _, c := range found.Containers {
		state := "⚪ stopped"
		if c.Running {
			state = "🟢 running"
		}
		fmt.Fprintf(a.stdout, "  %s %s | %s | created %s\n", state, short12(c.ID), c.Image,
			c.Created.Local().Format(time.DateTime))
	}
	for _, line := range imageLines(found) {
		fmt.Fprintf(a.stdout, "  🖼️ image %s\n", line)
	}

	if !force {
		what := "containers"
		if images {
			what = "containers and images"
		}
		fmt.Fprintf(a.stdout, "Remove all these %s? [y/N] ", what)
		line, _ := bufio.NewReader(a.stdin).ReadString('\n')
		answer := strings.ToLower(strings.TrimSpace(line))
		if answer != "y" && answer != "yes" {
			if line == "" || !strings.HasSuffix(line, "\n") {
				fmt.Fprintln(a.stdout)
			}
			fmt.Fprintln(a.stdout, "Cleanup cancelled")
			return nil
		}
	}

	rep, err := eng.Cleanup(ctx, engine.CleanupOptions{Images: images})
	if err != nil {
		return fail(err)
	}
	if len(rep.Failed) > 0 {
		fmt.Fprintf(a.stdout, "Removed %d container(s), %d failed\n", rep.Removed, len(rep.Failed))
	} else {
		fmt.Fprintf(a.stdout, "Removed %d container(s)\n", rep.Removed)
	}
	for _, f := range rep.Failed {
		fmt.Fprintf(a.stdout, "  Failed to remove %s\n", f)
	}
	if images {
		if len(rep.ImagesFailed) > 0 {
			fmt.Fprintf(a.stdout, "Removed %d image(s), %d failed\n", rep.ImagesRemoved, len(rep.ImagesFailed))
		} else {
			fmt.Fprintf(a.stdout, "Removed %d image(s)\n", rep.ImagesRemoved)
		}
		for _, f := range rep.ImagesFailed {
			fmt.Fprintf(a.stdout, "  Failed to remove image %s\n", f)
		}
	}
	return nil // failures are listed; like the reference, cleanup still exits 0
}

// printInUse lists the sandboxes cleanup leaves alone because a running
// process (a server, a run in progress) still uses them.
func (a *app) printInUse(inUse []engine.ContainerInfo) {
	if len(inUse) == 0 {
		return
	}
	fmt.Fprintf(a.stdout, "Skipping %d container(s) in use by running processes (stop them first to remove these):\n", len(inUse))
	for _, c := range inUse {
		fmt.Fprintf(a.stdout, "  ⏭️ %s | %s | in use by pid %d\n", short12(c.ID), c.Image, c.OwnerPID)
	}
}

func (a *app) configCommand(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "config",
		Short: "Show the effective configuration",
		Long: "Show the effective configuration and where each value came from: the first of\n" +
			"./isol8.config.json and ~/.isol8/config.json that exists, merged over the built-in\n" +
			"defaults.",
		Args:        maxArgs(0),
		Annotations: needsConfig,
		RunE: func(*cobra.Command, []string) error {
			if asJSON {
				data, err := g.cfg.JSON()
				if err != nil {
					return errf("%s", err)
				}
				fmt.Fprintf(a.stdout, "%s\n", data)
				return nil
			}
			fmt.Fprint(a.stdout, humanConfig(g.cfg))
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the merged configuration as JSON")
	return c
}

// humanConfig is config.Human plus a "Sources" section listing the keys the
// config file set.
func humanConfig(cfg *config.Config) string {
	out := strings.TrimSuffix(cfg.Human(), "\n")
	var b strings.Builder
	b.WriteString(out)
	b.WriteString("\n  ── Sources ──\n")
	keys := fileKeys(cfg)
	switch {
	case cfg.Path() == "":
		b.WriteString("  (all values are built-in defaults)\n")
	case len(keys) == 0:
		fmt.Fprintf(&b, "  (%s sets no known key; all values are built-in defaults)\n", cfg.Path())
	default:
		width := 0
		for _, k := range keys {
			width = max(width, len(k))
		}
		for _, k := range keys {
			fmt.Fprintf(&b, "  %-*s  %s\n", width, k, cfg.Source(k))
		}
		b.WriteString("  (every other value is a built-in default)\n")
	}
	b.WriteString("\n")
	return b.String()
}

// fileKeys lists the dotted keys (sections flattened one level, lists and
// poolSize as leaves) whose effective value comes from the config file.
func fileKeys(cfg *config.Config) []string {
	data, err := cfg.JSON()
	if err != nil {
		return nil
	}
	var top map[string]any
	if err := json.Unmarshal(data, &top); err != nil {
		return nil
	}
	var keys []string
	for k, v := range top {
		if sec, ok := v.(map[string]any); ok && k != "poolSize" {
			for sk := range sec {
				keys = append(keys, k+"."+sk)
			}
			continue
		}
		keys = append(keys, k)
	}
	var out []string
	for _, k := range keys {
		if cfg.Source(k) != config.SourceDefault {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// prebuiltOptions turns the config's prebuiltImages into build options.
func prebuiltOptions(list []config.PrebuiltImage) []engine.BuildOptions {
	out := make([]engine.BuildOptions, 0, len(list))
	for _, p := range list {
		out = append(out, engine.BuildOptions{Tag: p.Tag, Runtime: p.Runtime, Packages: p.InstallPackages, Setup: p.SetupScript})
	}
	return out
}

package main

// Commands whose behaviour comes in later issues. They are registered with
// their documented flags (so --help is complete) and, after validating what
// they can validate locally, report that they are not available yet.

import (
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/isol8/isol8/runtimes"
)

func notAvailable(command string) error {
	return errf("%s is not available yet in this build", command)
}

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
		Short: "Build a custom image with packages or a setup script baked in (not available yet)",
		Long: "Build a custom image from a runtime's base image with packages installed and/or a\n" +
			"setup script run at build time.",
		Args:        maxArgs(0),
		Annotations: needsConfig,
		RunE: func(c *cobra.Command, _ []string) error {
			if _, err := a.validateBuild(c, f); err != nil {
				return err
			}
			return notAvailable("build")
		},
	}
	fs := c.Flags()
	strFlag(fs, &f.base, "base", "", "runtime", "base runtime: "+strings.Join(runtimes.Available(), ", ")+" (required)")
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

func (a *app) listCustomCommand(*globals) *cobra.Command {
	return &cobra.Command{
		Use:         "list-custom",
		Short:       "List custom isol8 images (not available yet)",
		Args:        maxArgs(0),
		Annotations: needsConfig,
		RunE:        func(*cobra.Command, []string) error { return notAvailable("list-custom") },
	}
}

func (a *app) loginCommand(*globals) *cobra.Command {
	var host, key, name, ttl string
	c := &cobra.Command{
		Use:   "login",
		Short: "Get an API token from a server and store it (not available yet)",
		Long: "Exchange the master key for a DB-backed API token on an isol8 server and store it in\n" +
			"~/.isol8/credentials.json for later --host runs.",
		Args: maxArgs(0),
		RunE: func(*cobra.Command, []string) error { return notAvailable("login") },
	}
	fs := c.Flags()
	strFlag(fs, &host, "host", "", "url", "server URL (required)")
	strFlag(fs, &key, "key", "", "master", "master API key (required)")
	strFlag(fs, &name, "name", "", "n", "name of the key (default: cli-login-<time>)")
	strFlag(fs, &ttl, "ttl", "", "ms", "lifetime of the token in milliseconds")
	return c
}

func (a *app) sessionCommand(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "session",
		Short: "List and stop the sessions of an isol8 server",
		Args:  cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown command '%s'", args[0])
			}
			return c.Help()
		},
	}
	var listHost, listKey, stopHost, stopKey string
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the sessions of a server",
		Args:  maxArgs(0),
		RunE: func(c *cobra.Command, _ []string) error {
			return a.sessionList(c, listHost, listKey, asJSON)
		},
	}
	strFlag(list.Flags(), &listHost, "host", "", "url", "server URL (required)")
	strFlag(list.Flags(), &listKey, "key", "", "key", "API key (default: $ISOL8_API_KEY, then `isol8 login` credentials)")
	list.Flags().BoolVar(&asJSON, "json", false, "print the sessions as JSON")
	stop := &cobra.Command{
		Use:   "stop <id>",
		Short: "Destroy a session",
		Args:  maxArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return a.sessionStop(c, args, stopHost, stopKey)
		},
	}
	strFlag(stop.Flags(), &stopHost, "host", "", "url", "server URL (required)")
	strFlag(stop.Flags(), &stopKey, "key", "", "key", "API key (default: $ISOL8_API_KEY, then `isol8 login` credentials)")
	c.AddCommand(list, stop)
	return c
}

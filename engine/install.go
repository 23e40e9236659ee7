package engine

import (
	"context"
	"slices"
	"sync"

	"github.com/isol8/isol8/agent"
	"github.com/isol8/isol8/registry"
	"github.com/isol8/isol8/runtimes"
)

// TextInstallNeedsNetwork refuses installs in a sandbox with no network.
const TextInstallNeedsNetwork = "Package installs need network access, but the network mode is \"none\". " +
	"Use --net filtered (the default with --install when --net is not given) or --net host."

// lazyRegistries loads the host's registry configuration once per host, on
// the first install or build that needs it (every view and session of a
// host shares the reading).
type lazyRegistries struct {
	once sync.Once
	cfg  registry.Config
}

// registries returns where this engine's installs fetch from.
func (e *Engine) registries() registry.Config {
	if e.opts.Registries != nil {
		return *e.opts.Registries
	}
	return e.host.registries()
}

// registries returns the host's own registry configuration, read once.
func (h *Host) registries() registry.Config {
	h.lazyReg.once.Do(func() {
		// Bounded by registry's own timeout on `npm config get`.
		cfg, err := registry.FromHost(context.Background())
		if err != nil {
			h.log.Warn("reading the host's package registries", "err", err)
		}
		h.lazyReg.cfg = cfg
	})
	return h.lazyReg.cfg
}

// InstallNetwork returns o adjusted for a run that installs packages for
// runtime rt, the rule of the CLI's --install: when the caller did not
// choose a network (explicit false), the network becomes filtered; when
// the network is then filtered, the registry host patterns (from
// registry.InstallRegistryHosts or registry.Config.Patterns) are appended
// to the whitelist, without duplicates. A deny list is kept as is (deny
// wins over allow, so an operator can still block a registry).
func InstallNetwork(o Options, explicit bool, patterns []string) Options {
	if !explicit {
		o.Network = NetworkFiltered
	}
	if o.Network != NetworkFiltered || len(patterns) == 0 {
		return o
	}
	f := NetworkFilter{}
	if o.NetworkFilter != nil {
		f.Whitelist = slices.Clone(o.NetworkFilter.Whitelist)
		f.Blacklist = slices.Clone(o.NetworkFilter.Blacklist)
	}
	for _, p := range patterns {
		if !slices.Contains(f.Whitelist, p) {
			f.Whitelist = append(f.Whitelist, p)
		}
	}
	if f.Blacklist == nil {
		f.Blacklist = []string{}
	}
	o.NetworkFilter = &f
	return o
}

// planInstall adds what a request's installs need to p: the registry
// environment (before secrets and request env, so a client can still
// point an installer elsewhere with a secret, e.g. an index URL with a
// token), the environment that finds installed files afterwards, and for
// bash the operator's apt sources.
func (e *Engine) planInstall(p *plan) []string {
	if len(p.install) == 0 {
		return nil
	}
	cfg := e.registries()
	if p.rt.Name == runtimes.Bash && cfg.AptSources != "" {
		p.files = append(p.files, agent.File{Path: runtimes.AptSourcesFile, Data: []byte(cfg.AptSources), Mode: 0o644})
	}
	return cfg.Env(p.rt.Name)
}

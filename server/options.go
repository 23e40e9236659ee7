package server

import (
	"encoding/json"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/config"
	"github.com/isol8/isol8/engine"
)

// engineOptions merges a request's client options over the server's
// execution defaults. Clients choose only what api.Options can hold, so the
// operator's settings (custom profile paths, Persist, host paths, global
// limits, the remote code policy) cannot come from them at all. The pool
// policy is always the server's and the mode follows the session id. With
// server.allowClientOverrides off a client may only tighten the defaults.
func engineOptions(cfg *config.Config, client *api.Options, persistent bool) api.Options {
	d := cfg.Defaults
	o := api.Options{
		Network: d.Network, MemoryLimit: d.MemoryLimit, CPULimit: d.CPULimit, TimeoutMs: d.TimeoutMs,
		SandboxSize: d.SandboxSize, TmpSize: d.TmpSize,
	}
	if client != nil {
		if cfg.Server.AllowClientOverrides {
			// Spread semantics: every field the client set replaces the
			// default (api.Options omits unset fields from JSON).
			data, _ := json.Marshal(client)
			_ = json.Unmarshal(data, &o)
		} else {
			tighten(&o, client)
		}
	}
	// Clients cannot switch the server's debug logging on.
	o.Debug = false
	size := api.PoolSize{Clean: cfg.PoolSize.Clean, Dirty: cfg.PoolSize.Dirty}
	o.PoolStrategy, o.PoolSize = cfg.PoolStrategy, &size
	o.Mode = api.ModeEphemeral
	if persistent {
		o.Mode = api.ModePersistent
	}
	return o
}

// tighten applies the client options that can only make a run more
// restricted than the defaults; the rest are ignored.
func tighten(o *api.Options, c *api.Options) {
	if c.TimeoutMs > 0 && c.TimeoutMs < o.TimeoutMs {
		o.TimeoutMs = c.TimeoutMs
	}
	if c.CPULimit > 0 && c.CPULimit < o.CPULimit {
		o.CPULimit = c.CPULimit
	}
	if smaller(c.MemoryLimit, o.MemoryLimit) {
		o.MemoryLimit = c.MemoryLimit
	}
	if smaller(c.SandboxSize, o.SandboxSize) {
		o.SandboxSize = c.SandboxSize
	}
	if smaller(c.TmpSize, o.TmpSize) {
		o.TmpSize = c.TmpSize
	}
	if c.PidsLimit > 0 && c.PidsLimit < engine.DefaultPidsLimit {
		o.PidsLimit = c.PidsLimit
	}
	if c.MaxOutputSize > 0 && c.MaxOutputSize < engine.DefaultMaxOutputSize {
		o.MaxOutputSize = c.MaxOutputSize
	}
	if c.Network == api.NetworkNone {
		o.Network = api.NetworkNone
	}
	if c.ReadonlyRootFs != nil && *c.ReadonlyRootFs {
		o.ReadonlyRootFs = c.ReadonlyRootFs
	}
	// Secrets only mask output; they never widen what a run may do.
	o.Secrets = c.Secrets
}

// smaller reports whether size a parses and is below b.
func smaller(a, b string) bool {
	if a == "" {
		return false
	}
	x, err := config.ParseMemoryLimit(a)
	if err != nil {
		return false
	}
	y, err := config.ParseMemoryLimit(b)
	return err == nil && x < y
}

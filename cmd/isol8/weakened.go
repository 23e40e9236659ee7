package main

import (
	"strings"

	"github.com/isol8/isol8/config"
	"github.com/isol8/isol8/engine"
)

// weakenedWarning returns the one-line warning a run prints when its
// sandbox is weaker than the default, or "" when it is not. It is printed
// on every run so that a weakening set once in a config file is never
// forgotten. cfg (may be nil) says whether remote code is enabled.
func weakenedWarning(o engine.Options, cfg *config.Config) string {
	var what []string
	if o.Security != nil && o.Security.Seccomp == engine.SeccompUnconfined {
		what = append(what, "seccomp unconfined")
	}
	if o.Network == engine.NetworkHost {
		what = append(what, "host network")
	}
	// network.allowPrivateDestinations opens the SSRF guard of both
	// host-side paths out: named for the ones this run uses.
	if o.Network == engine.NetworkFiltered && o.AllowPrivateDestinations {
		what = append(what, "filtered network may reach private addresses")
	}
	if cfg != nil && cfg.RemoteCode.Enabled && o.AllowPrivateDestinations {
		what = append(what, "remote-code fetches may reach private addresses")
	}
	if o.ReadonlyRootFs != nil && !*o.ReadonlyRootFs {
		what = append(what, "writable root filesystem")
	}
	if len(what) == 0 {
		return ""
	}
	return "[WARN] Sandbox weakened: " + strings.Join(what, ", ")
}

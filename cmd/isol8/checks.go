package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/isol8/isol8/config"
	"github.com/isol8/isol8/engine"
	"github.com/isol8/isol8/runtimes"
)

// minMemory is the smallest --memory a sandbox starts and runs a program
// with: the init agent and an interpreter need a few megabytes.
const (
	minMemory     = 8 << 20
	minMemoryText = "8m"
)

// reservedSecretNames are set by isol8 in every sandbox; a secret of that
// name would replace them and break the run (PATH: the interpreter is not
// found).
func reservedSecretNames() []string {
	var names []string
	for _, kv := range runtimes.BaseEnv() {
		k, _, _ := strings.Cut(kv, "=")
		names = append(names, k)
	}
	return names
}

// validateSizes checks --memory, --sandbox-size and --tmp-size, each error
// naming its own flag.
func (f *runFlags) validateSizes() error {
	if f.given("memory") {
		n, err := config.ParseMemoryLimit(f.memory)
		if err != nil {
			return errf("%s", err)
		}
		if n < minMemory {
			return errf("Invalid --memory value: %q. The sandbox needs at least %s.", f.memory, minMemoryText)
		}
	}
	for _, s := range []struct{ name, value string }{{"sandbox-size", f.sandboxSize}, {"tmp-size", f.tmpSize}} {
		if !f.given(s.name) {
			continue
		}
		n, err := config.ParseMemoryLimit(s.value)
		if err != nil || n <= 0 {
			return errf("Invalid --%s value: %q. Use a size such as \"256m\" or \"1g\".", s.name, s.value)
		}
	}
	return nil
}

// configMemoryOK applies --memory's minimum to a limit from the config
// file, naming the file.
func configMemoryOK(f *runFlags, cfg *config.Config, limit string) error {
	if f.given("memory") || limit == "" || cfg == nil {
		return nil
	}
	if n, err := config.ParseMemoryLimit(limit); err == nil && n < minMemory {
		return errf("Invalid defaults.memoryLimit %q in %s. The sandbox needs at least %s.",
			limit, cfg.Source("defaults.memoryLimit"), minMemoryText)
	}
	return nil
}

// validateSecrets refuses secrets that would replace isol8's own
// environment variables.
func (f *runFlags) validateSecrets() error {
	reserved := reservedSecretNames()
	for k := range f.secretsMap {
		if slices.Contains(reserved, k) {
			return errf("--secret %s: %s is a reserved name (isol8 sets it in the sandbox). Reserved: %s",
				k, k, strings.Join(reserved, ", "))
		}
	}
	return nil
}

// validateFilters compiles --allow and --deny at once, so a bad pattern
// fails before anything starts.
func (f *runFlags) validateFilters() error {
	for _, fl := range []struct {
		name string
		list []string
	}{{"allow", f.allow}, {"deny", f.deny}} {
		for _, p := range fl.list {
			if _, err := regexp.Compile(p); err != nil {
				return errf("Invalid --%s pattern %q: %s", fl.name, p, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
			}
		}
	}
	return nil
}

// filterWarnings are the [WARN] lines for network-filter flags that have no
// effect in the resolved network mode.
func (f *runFlags) filterWarnings(network string) []string {
	if network == engine.NetworkFiltered {
		if f.logNetwork && !f.noStream {
			// A stream has no final result to carry the logs.
			return []string{"[WARN] --log-network prints the network logs only with --no-stream"}
		}
		return nil
	}
	var out []string
	for _, name := range []string{"allow", "deny", "log-network"} {
		if f.given(name) {
			out = append(out, fmt.Sprintf("[WARN] --%s has no effect with --net %s (it applies to --net filtered only)", name, network))
		}
	}
	return out
}

// refuseInstallWithoutNetwork refuses packages that could not be fetched,
// before any engine exists: with --net none no installer reaches a
// registry.
func refuseInstallWithoutNetwork(f *runFlags, network string) error {
	if len(f.install) > 0 && network == engine.NetworkNone {
		return errf("%s", engine.TextInstallNeedsNetwork)
	}
	return nil
}

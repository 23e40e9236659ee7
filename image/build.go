package image

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// baseBuild is one run of mmdebstrap plus the isol8 additions.
type baseBuild struct {
	recipe   baseRecipe
	dir      string // cache dir of this base; the result lands in dir/rootfs
	debCache string // apt's .deb cache, shared with apt layers
	logFile  string // mmdebstrap's output
}

// aptBuild is one apt layer made over the base rootfs.
type aptBuild struct {
	baseRoot string
	work     string // scratch dir for the overlay (removed afterwards)
	debCache string
	logFile  string
	packages []string
}

// mmdebstrapArgs is the mmdebstrap command line for a base. mirrors are the
// host's apt source files for the suite (hostAptSources); without any,
// mmdebstrap picks its default sources. The .deb cache is synced in before
// downloading and out after installing, so a rebuild downloads nothing that
// is still current.
func mmdebstrapArgs(r baseRecipe, debCache, target string, mirrors []string) []string {
	args := []string{"--variant=" + r.Variant, "--mode=root", "--format=directory"}
	if len(r.Include) > 0 {
		args = append(args, "--include="+strings.Join(r.Include, ","))
	}
	for _, h := range r.HookDirs {
		args = append(args, "--hook-dir="+h)
	}
	for _, o := range r.AptOpts {
		args = append(args, "--aptopt="+o)
	}
	for _, o := range r.DpkgOpts {
		args = append(args, "--dpkgopt="+o)
	}
	args = append(args,
		"--skip=essential/unlink", // keep the essential .debs for sync-out
		`--setup-hook=mkdir -p "$1"/var/cache/apt/archives/`,
		"--setup-hook=sync-in "+shellQuote(debCache)+" /var/cache/apt/archives/",
		"--customize-hook=sync-out /var/cache/apt/archives "+shellQuote(debCache),
		"--", r.Suite, target,
	)
	return append(args, mirrors...)
}

// hostAptSources returns the host's apt source files (one-line .list or
// deb822 .sources) that name suite, so the image comes from the mirror the
// host is configured for (a private mirror just works). mmdebstrap accepts
// such files as MIRROR arguments. Files for other suites (third-party
// repositories, other releases) are left out.
func hostAptSources(root, suite string) []string {
	var files []string
	if f := filepath.Join(root, "etc/apt/sources.list"); namesSuite(f, suite) {
		files = append(files, f)
	}
	for _, pattern := range []string{"*.list", "*.sources"} {
		matches, _ := filepath.Glob(filepath.Join(root, "etc/apt/sources.list.d", pattern))
		sort.Strings(matches)
		for _, f := range matches {
			if namesSuite(f, suite) {
				files = append(files, f)
			}
		}
	}
	return files
}

// namesSuite reports whether an apt source file has an active entry whose
// suite is suite (or suite-updates, suite-security, ...).
func namesSuite(path, suite string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for _, field := range strings.Fields(line) {
			if field == suite || strings.HasPrefix(field, suite+"-") || strings.HasPrefix(field, suite+"/") {
				return true
			}
		}
	}
	return false
}

// shellQuote quotes s for sh (and for mmdebstrap's special-hook parser).
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// accountLine is one line of /etc/passwd or /etc/group to add: name and
// numeric id identify it for conflict checks.
type accountLine struct {
	name string
	id   int
	line string
}

// baseAccounts are the lines the sandbox user and group add to each
// account database (path relative to the rootfs).
func baseAccounts(r baseRecipe) map[string]accountLine {
	return map[string]accountLine{
		"etc/passwd":  {r.User, r.UID, fmt.Sprintf("%s:x:%d:%d::%s:%s", r.User, r.UID, r.GID, r.Home, r.Shell)},
		"etc/shadow":  {r.User, -1, r.User + ":!:::::::"},
		"etc/group":   {r.Group, r.GID, fmt.Sprintf("%s:x:%d:", r.Group, r.GID)},
		"etc/gshadow": {r.Group, -1, r.Group + ":!::"},
	}
}

// addAccountLine returns data with a.line appended, unchanged if the exact
// line is present, or an error if the name or id is taken by another entry
// (id -1: no id column).
func addAccountLine(data []byte, a accountLine) ([]byte, error) {
	for _, l := range strings.Split(string(data), "\n") {
		if l == a.line {
			return data, nil
		}
		f := strings.Split(l, ":")
		if len(f) < 3 {
			continue
		}
		if f[0] == a.name {
			return nil, fmt.Errorf("%q already exists with a different entry: %q", a.name, l)
		}
		if a.id >= 0 && f[2] == strconv.Itoa(a.id) {
			return nil, fmt.Errorf("id %d already taken by %q", a.id, f[0])
		}
	}
	if len(data) > 0 && !bytes.HasSuffix(data, []byte("\n")) {
		data = append(data, '\n')
	}
	return append(data, a.line+"\n"...), nil
}

// logTail returns up to n last lines of a log file, for error messages.
func logTail(name string, n int) string {
	data, err := os.ReadFile(name)
	if err != nil {
		return ""
	}
	if len(data) > 16<<10 {
		data = data[len(data)-16<<10:]
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

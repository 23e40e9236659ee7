package main

import (
	"bufio"
	"bytes"
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/isol8/isol8/runtimes"
)

// Public registries used when no mirror is configured.
var (
	defaultPyPIHosts = []string{"pypi.org", "files.pythonhosted.org"}
	defaultNpmHost   = "registry.npmjs.org"
	defaultAptHost   = "deb.debian.org"
)

// npmTimeout bounds `npm config get registry`.
const npmTimeout = 5 * time.Second

// hostRegistry finds the package registries configured on this host, so a
// private mirror is allowed through the filtered network automatically.
type hostRegistry struct {
	env  map[string]string
	home string
	cwd  string
	// Overrides for tests; empty means the real locations.
	pipFiles []string
	aptFiles []string
	npm      func(ctx context.Context) (string, error)
}

// hostPattern anchors a host name as a filter pattern: ^host$, dots escaped.
func hostPattern(host string) string { return "^" + regexp.QuoteMeta(host) + "$" }

func hostPatterns(hosts []string) []string {
	out := make([]string, 0, len(hosts))
	for _, h := range dedupe(hosts) {
		out = append(out, hostPattern(h))
	}
	return out
}

// patterns returns the registry patterns of runtime rt: python from pip's
// index-url (PIP_INDEX_URL, pip config files) plus extra-index-url hosts,
// else PyPI; node, bun and agent from npm's registry setting, else the
// public npm registry; bash from the host's apt sources (images are built
// from them), else deb.debian.org; deno none.
func (r hostRegistry) patterns(ctx context.Context, rt string) []string {
	switch rt {
	case runtimes.Python:
		return hostPatterns(r.pipHosts())
	case runtimes.Node, runtimes.Bun, runtimes.Agent:
		return hostPatterns([]string{r.npmHost(ctx)})
	case runtimes.Bash:
		return hostPatterns(r.aptHosts())
	}
	return nil
}

func urlHost(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// pipFileList is pip's configuration files in load order (later wins).
func (r hostRegistry) pipFileList() []string {
	if r.pipFiles != nil {
		return r.pipFiles
	}
	files := []string{"/etc/xdg/pip/pip.conf", "/etc/pip.conf"}
	if r.home != "" {
		files = append(files, filepath.Join(r.home, ".pip", "pip.conf"))
		xdg := r.env["XDG_CONFIG_HOME"]
		if xdg == "" {
			xdg = filepath.Join(r.home, ".config")
		}
		files = append(files, filepath.Join(xdg, "pip", "pip.conf"))
	}
	if p := r.env["PIP_CONFIG_FILE"]; p != "" && p != os.DevNull {
		files = append(files, p)
	}
	return files
}

func (r hostRegistry) pipHosts() []string {
	index := ""
	var extra []string
	for _, p := range r.pipFileList() {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		values := iniValues(data, map[string]bool{"global": true, "install": true})
		if v := values["index-url"]; v != "" {
			index = v
		}
		extra = append(extra, strings.Fields(values["extra-index-url"])...)
	}
	if v := r.env["PIP_INDEX_URL"]; v != "" {
		index = v
	}
	extra = append(extra, strings.Fields(r.env["PIP_EXTRA_INDEX_URL"])...)

	var hosts []string
	if h := urlHost(index); h != "" {
		hosts = append(hosts, h)
	} else {
		hosts = append(hosts, defaultPyPIHosts...)
	}
	for _, e := range extra {
		if h := urlHost(e); h != "" {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// iniValues reads key = value pairs from the given sections of an INI file
// ([install] after [global] wins); keys use "-" (pip accepts "_" too).
func iniValues(data []byte, sections map[string]bool) map[string]string {
	out := map[string]string{}
	section := ""
	bySection := map[string]map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case line[0] == '[' && strings.HasSuffix(line, "]"):
			section = strings.TrimSpace(line[1 : len(line)-1])
			continue
		}
		if !sections[section] {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k = strings.ReplaceAll(strings.TrimSpace(k), "_", "-")
		if bySection[section] == nil {
			bySection[section] = map[string]string{}
		}
		bySection[section][k] = strings.TrimSpace(v)
	}
	for _, s := range []string{"global", "install"} {
		for k, v := range bySection[s] {
			out[k] = v
		}
	}
	return out
}

// npmHost is the host of npm's registry: npm_config_registry, then
// `npm config get registry` (run in the working directory, so a project
// .npmrc counts), then the public registry.
func (r hostRegistry) npmHost(ctx context.Context) string {
	for _, k := range []string{"npm_config_registry", "NPM_CONFIG_REGISTRY"} {
		if h := urlHost(r.env[k]); h != "" {
			return h
		}
	}
	get := r.npm
	if get == nil {
		get = r.npmConfigRegistry
	}
	if reg, err := get(ctx); err == nil {
		if h := urlHost(reg); h != "" {
			return h
		}
	}
	return defaultNpmHost
}

func (r hostRegistry) npmConfigRegistry(ctx context.Context) (string, error) {
	path, err := exec.LookPath("npm")
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, npmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "config", "get", "registry")
	cmd.Dir = r.cwd
	out, err := cmd.Output()
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// aptHosts reads the hosts of the host's apt sources (one-line and deb822).
func (r hostRegistry) aptHosts() []string {
	files := r.aptFiles
	if files == nil {
		files = []string{"/etc/apt/sources.list"}
		for _, pat := range []string{"/etc/apt/sources.list.d/*.list", "/etc/apt/sources.list.d/*.sources"} {
			m, _ := filepath.Glob(pat)
			files = append(files, m...)
		}
	}
	var hosts []string
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || line[0] == '#' {
				continue
			}
			var uris []string
			if rest, ok := strings.CutPrefix(line, "URIs:"); ok {
				uris = strings.Fields(rest)
			} else if f := strings.Fields(line); len(f) > 1 && (f[0] == "deb" || f[0] == "deb-src") {
				for _, w := range f[1:] {
					if strings.Contains(w, "://") {
						uris = append(uris, w)
						break
					}
				}
			}
			for _, u := range uris {
				if h := urlHost(u); h != "" {
					hosts = append(hosts, h)
				}
			}
		}
	}
	if len(hosts) == 0 {
		hosts = []string{defaultAptHost}
	}
	return hosts
}

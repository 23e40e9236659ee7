// Package registry finds the package registries this host is configured
// for (pip's index, npm's registry, apt's sources), so package installs in
// a sandbox use the same mirrors as the host and the filtered network lets
// exactly those hosts through. It reads configuration files and may run
// `npm config get registry`; it starts no sandbox.
package registry

import (
	"bufio"
	"bytes"
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/isol8/isol8/api"
)

// Runtime names (the same strings as package runtimes; this package
// imports no other isol8 package but api).
const (
	python = "python"
	node   = "node"
	bun    = "bun"
	deno   = "deno"
	bash   = "bash"
	agent  = "agent"
)

// Public registries used when no mirror is configured.
var (
	defaultPyPIHosts = []string{"pypi.org", "files.pythonhosted.org"}
	defaultNpmHost   = "registry.npmjs.org"
	defaultAptHost   = "deb.debian.org"
	// jsrHost serves deno's jsr: specifiers; no host setting names it.
	jsrHost = "jsr.io"
)

// npmTimeout bounds `npm config get registry`.
const npmTimeout = 5 * time.Second

// Config is where package installs fetch from. Empty fields mean the
// tool's own default (PyPI, the public npm registry, the image's apt
// sources). URLs never carry credentials: Load drops the user-info part,
// because everything in Config is handed to untrusted code.
type Config struct {
	// PipIndexURL is pip's index-url (PEP 503 "simple" index).
	PipIndexURL string `json:"pipIndexUrl,omitempty"`
	// PipExtraIndexURLs are pip's extra-index-url values.
	PipExtraIndexURLs []string `json:"pipExtraIndexUrls,omitempty"`
	// PipTrustedHosts are pip's trusted-host values (plain-HTTP mirrors).
	PipTrustedHosts []string `json:"pipTrustedHosts,omitempty"`
	// NpmRegistry is npm's registry URL, used by npm, bun and deno.
	NpmRegistry string `json:"npmRegistry,omitempty"`
	// AptHosts are the hosts of the host's apt sources (the images are
	// built from those sources, so they are the hosts a bash install
	// reaches with the image's own source list).
	AptHosts []string `json:"aptHosts,omitempty"`
	// AptSources, when set, replaces the image's apt source list for bash
	// installs (one-line sources.list format).
	AptSources string `json:"aptSources,omitempty"`
}

// Patterns returns the anchored host patterns (^host$, dots escaped) a
// filtered sandbox must allow for runtime rt to install packages (Hosts).
func (c Config) Patterns(rt string) []string { return hostPatterns(c.Hosts(rt)) }

// Hosts returns the registry hosts runtime rt's installer reaches: python
// its index and extra indexes (PyPI's two hosts by default); node, bun and
// agent the npm registry; deno the npm registry and jsr.io; bash the apt
// sources' hosts.
func (c Config) Hosts(rt string) []string {
	switch rt {
	case python:
		var hosts []string
		if h := urlHost(c.PipIndexURL); h != "" {
			hosts = append(hosts, h)
		} else {
			hosts = append(hosts, defaultPyPIHosts...)
		}
		for _, e := range c.PipExtraIndexURLs {
			if h := urlHost(e); h != "" {
				hosts = append(hosts, h)
			}
		}
		return hosts
	case node, bun, agent:
		return []string{c.npmHost()}
	case deno:
		return []string{c.npmHost(), jsrHost}
	case bash:
		if c.AptSources != "" {
			return orDefault(aptSourceHosts([]byte(c.AptSources)), defaultAptHost)
		}
		return orDefault(c.AptHosts, defaultAptHost)
	}
	return nil
}

// Env returns the variables that point runtime rt's installer (and, for
// deno, whose cache is keyed by registry, the program) at the configured
// registries. Nothing is returned for settings left at their default.
func (c Config) Env(rt string) []string {
	var env []string
	switch rt {
	case python:
		if c.PipIndexURL != "" {
			env = append(env, "PIP_INDEX_URL="+c.PipIndexURL)
		}
		if len(c.PipExtraIndexURLs) > 0 {
			env = append(env, "PIP_EXTRA_INDEX_URL="+strings.Join(c.PipExtraIndexURLs, " "))
		}
		if len(c.PipTrustedHosts) > 0 {
			env = append(env, "PIP_TRUSTED_HOST="+strings.Join(c.PipTrustedHosts, " "))
		}
	case node, bun, agent, deno:
		if c.NpmRegistry != "" {
			// npm reads either case, bun NPM_CONFIG_REGISTRY or
			// BUN_CONFIG_REGISTRY, deno NPM_CONFIG_REGISTRY.
			env = append(env, "NPM_CONFIG_REGISTRY="+c.NpmRegistry, "npm_config_registry="+c.NpmRegistry,
				"BUN_CONFIG_REGISTRY="+c.NpmRegistry)
		}
	}
	return env
}

func (c Config) npmHost() string {
	if h := urlHost(c.NpmRegistry); h != "" {
		return h
	}
	return defaultNpmHost
}

// InstallRegistryHosts returns the anchored host patterns runtime rt
// installs packages from, read from this host's configuration (see Host
// and Config.Patterns). An unknown runtime is an invalid-argument error.
func InstallRegistryHosts(ctx context.Context, rt string) ([]string, error) {
	switch rt {
	case python, node, bun, deno, bash, agent:
	default:
		return nil, api.InvalidArgumentf("Unknown runtime: %q", rt)
	}
	c, err := FromHost(ctx)
	if err != nil {
		return nil, err
	}
	return c.Patterns(rt), nil
}

// FromHost loads the registries of the current process's environment,
// home directory and working directory.
func FromHost(ctx context.Context) (Config, error) {
	home, _ := os.UserHomeDir()
	cwd, err := os.Getwd()
	if err != nil {
		cwd = ""
	}
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return Host{Env: env, Home: home, Cwd: cwd}.Load(ctx), nil
}

// Host locates a host's registry configuration.
type Host struct {
	Env  map[string]string
	Home string
	Cwd  string
	// Overrides for tests; nil means the real locations.
	PipFiles []string
	AptFiles []string
	Npm      func(ctx context.Context) (string, error)
}

// Load reads the configuration: pip from its config files then
// PIP_INDEX_URL, PIP_EXTRA_INDEX_URL and PIP_TRUSTED_HOST; npm from
// npm_config_registry, then `npm config get registry` (run in Cwd, so a
// project .npmrc counts); apt from /etc/apt/sources.list and
// sources.list.d (one-line and deb822).
func (h Host) Load(ctx context.Context) Config {
	var c Config
	c.PipIndexURL, c.PipExtraIndexURLs, c.PipTrustedHosts = h.pip()
	c.NpmRegistry = h.npmRegistry(ctx)
	c.AptHosts = h.aptHosts()
	return c
}

// hostPattern anchors a host name as a filter pattern: ^host$, dots escaped.
func hostPattern(host string) string { return "^" + regexp.QuoteMeta(host) + "$" }

func hostPatterns(hosts []string) []string {
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		if p := hostPattern(strings.ToLower(h)); !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

func orDefault(hosts []string, def string) []string {
	if len(hosts) == 0 {
		return []string{def}
	}
	return hosts
}

func urlHost(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// cleanURL returns raw without credentials, or "" when it is not an
// absolute http(s) URL with a host.
func cleanURL(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return ""
	}
	u.User = nil
	return u.String()
}

func cleanURLs(raw []string) []string {
	var out []string
	for _, r := range raw {
		if u := cleanURL(r); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// pipFileList is pip's configuration files in load order (later wins).
func (h Host) pipFileList() []string {
	if h.PipFiles != nil {
		return h.PipFiles
	}
	files := []string{"/etc/xdg/pip/pip.conf", "/etc/pip.conf"}
	if h.Home != "" {
		files = append(files, filepath.Join(h.Home, ".pip", "pip.conf"))
		xdg := h.Env["XDG_CONFIG_HOME"]
		if xdg == "" {
			xdg = filepath.Join(h.Home, ".config")
		}
		files = append(files, filepath.Join(xdg, "pip", "pip.conf"))
	}
	if p := h.Env["PIP_CONFIG_FILE"]; p != "" && p != os.DevNull {
		files = append(files, p)
	}
	return files
}

func (h Host) pip() (index string, extra, trusted []string) {
	for _, p := range h.pipFileList() {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		values := iniValues(data, map[string]bool{"global": true, "install": true})
		if v := values["index-url"]; v != "" {
			index = v
		}
		extra = append(extra, strings.Fields(values["extra-index-url"])...)
		trusted = append(trusted, strings.Fields(values["trusted-host"])...)
	}
	if v := h.Env["PIP_INDEX_URL"]; v != "" {
		index = v
	}
	extra = append(extra, strings.Fields(h.Env["PIP_EXTRA_INDEX_URL"])...)
	trusted = append(trusted, strings.Fields(h.Env["PIP_TRUSTED_HOST"])...)
	var hosts []string
	for _, t := range trusted {
		if validHostPort(t) {
			hosts = append(hosts, t)
		}
	}
	return cleanURL(index), cleanURLs(extra), hosts
}

var hostPortRE = regexp.MustCompile(`^[A-Za-z0-9.-]+(:[0-9]+)?$`)

func validHostPort(s string) bool { return hostPortRE.MatchString(s) }

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

// npmRegistry is npm's registry: npm_config_registry, then `npm config
// get registry`; "" when neither names an http(s) URL.
func (h Host) npmRegistry(ctx context.Context) string {
	for _, k := range []string{"npm_config_registry", "NPM_CONFIG_REGISTRY"} {
		if u := cleanURL(h.Env[k]); u != "" {
			return u
		}
	}
	get := h.Npm
	if get == nil {
		get = h.npmConfigRegistry
	}
	if reg, err := get(ctx); err == nil {
		return cleanURL(reg)
	}
	return ""
}

func (h Host) npmConfigRegistry(ctx context.Context) (string, error) {
	path, err := exec.LookPath("npm")
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, npmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "config", "get", "registry")
	cmd.Dir = h.Cwd
	out, err := cmd.Output()
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// aptHosts reads the hosts of the host's apt sources.
func (h Host) aptHosts() []string {
	files := h.AptFiles
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
		hosts = append(hosts, aptSourceHosts(data)...)
	}
	return hosts
}

// aptSourceHosts returns the hosts named by apt sources in one-line or
// deb822 format.
func aptSourceHosts(data []byte) []string {
	var hosts []string
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
	return hosts
}

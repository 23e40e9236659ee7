package registry

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/containerd/errdefs"
)

var pypiPatterns = []string{`^pypi\.org$`, `^files\.pythonhosted\.org$`}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestHostRegistry(t *testing.T) {
	dir := t.TempDir()
	noNpm := func(context.Context) (string, error) { return "", errors.New("no npm") }
	for _, tc := range []struct {
		name    string
		runtime string
		reg     Host
		files   map[string]string
		want    []string
	}{
		{name: "python default", runtime: "python", reg: Host{PipFiles: []string{}}, want: pypiPatterns},
		{name: "python pip.conf index-url", runtime: "python",
			files: map[string]string{"pip.conf": "[global]\ncert = /x\nindex-url = https://mirror.example.com/simple\nextra_index_url = https://extra.example.org/simple http://second.example.net:8080/s\n"},
			reg:   Host{PipFiles: []string{filepath.Join(dir, "missing.conf"), filepath.Join(dir, "pip.conf")}},
			want:  []string{`^mirror\.example\.com$`, `^extra\.example\.org$`, `^second\.example\.net$`}},
		{name: "python install section wins", runtime: "python",
			files: map[string]string{"p2.conf": "[install]\nindex-url=https://b.example/simple\n[global]\nindex-url=https://a.example/simple\n"},
			reg:   Host{PipFiles: []string{filepath.Join(dir, "p2.conf")}},
			want:  []string{`^b\.example$`}},
		{name: "python cert-only config keeps pypi", runtime: "python",
			files: map[string]string{"p3.conf": "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n"},
			reg:   Host{PipFiles: []string{filepath.Join(dir, "p3.conf")}},
			want:  pypiPatterns},
		{name: "python env wins", runtime: "python",
			files: map[string]string{"p4.conf": "[global]\nindex-url=https://a.example/simple\n"},
			reg:   Host{PipFiles: []string{filepath.Join(dir, "p4.conf")}, Env: map[string]string{"PIP_INDEX_URL": "https://env.example/simple"}},
			want:  []string{`^env\.example$`}},
		{name: "npm default", runtime: "node", reg: Host{Npm: noNpm}, want: []string{`^registry\.npmjs\.org$`}},
		{name: "npm config", runtime: "bun", reg: Host{Npm: func(context.Context) (string, error) { return "https://npm.corp.example/\n", nil }},
			want: []string{`^npm\.corp\.example$`}},
		{name: "npm env", runtime: "agent", reg: Host{Npm: noNpm, Env: map[string]string{"npm_config_registry": "https://r.example/"}},
			want: []string{`^r\.example$`}},
		{name: "npm undefined", runtime: "node", reg: Host{Npm: func(context.Context) (string, error) { return "undefined", nil }},
			want: []string{`^registry\.npmjs\.org$`}},
		{name: "apt sources", runtime: "bash",
			files: map[string]string{"sources.list": "# c\ndeb [arch=amd64] http://mirror.example/debian bookworm main\n",
				"debian.sources": "Types: deb\nURIs: http://deb.debian.org/debian http://mirror.example/debian\nSuites: bookworm\n"},
			reg:  Host{AptFiles: []string{filepath.Join(dir, "sources.list"), filepath.Join(dir, "debian.sources")}},
			want: []string{`^mirror\.example$`, `^deb\.debian\.org$`}},
		{name: "apt default", runtime: "bash", reg: Host{AptFiles: []string{}}, want: []string{`^deb\.debian\.org$`}},
		{name: "deno npm and jsr", runtime: "deno", reg: Host{Npm: noNpm}, want: []string{`^registry\.npmjs\.org$`, `^jsr\.io$`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for name, content := range tc.files {
				write(t, dir, name, content)
			}
			if got := tc.reg.Load(t.Context()).Patterns(tc.runtime); !slices.Equal(got, tc.want) {
				t.Errorf("patterns = %v, want %v", got, tc.want)
			}
		})
	}
}

// Credentials in a host's registry URLs never reach the sandbox: the URLs
// are handed to untrusted code as environment variables.
func TestLoadDropsCredentials(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "pip.conf", "[global]\nindex-url = https://user:tok@pip.corp.example/simple\ntrusted-host = pip.corp.example bad;host\n")
	h := Host{
		PipFiles: []string{filepath.Join(dir, "pip.conf")},
		AptFiles: []string{},
		Env:      map[string]string{"npm_config_registry": "https://u:p@npm.corp.example/"},
	}
	c := h.Load(t.Context())
	want := Config{
		PipIndexURL:     "https://pip.corp.example/simple",
		PipTrustedHosts: []string{"pip.corp.example"},
		NpmRegistry:     "https://npm.corp.example/",
	}
	if !slices.Equal(c.Env("python"), []string{"PIP_INDEX_URL=" + want.PipIndexURL, "PIP_TRUSTED_HOST=pip.corp.example"}) {
		t.Errorf("python env = %q", c.Env("python"))
	}
	if c.PipIndexURL != want.PipIndexURL || c.NpmRegistry != want.NpmRegistry || !slices.Equal(c.PipTrustedHosts, want.PipTrustedHosts) {
		t.Errorf("Load = %+v, want %+v", c, want)
	}
	for _, rt := range []string{"node", "bun", "deno"} {
		env := c.Env(rt)
		if !slices.Contains(env, "NPM_CONFIG_REGISTRY=https://npm.corp.example/") || !slices.Contains(env, "npm_config_registry=https://npm.corp.example/") {
			t.Errorf("%s env = %q", rt, env)
		}
	}
	if env := (Config{}).Env("python"); len(env) != 0 {
		t.Errorf("default config sets %q", env)
	}
}

func TestAptSourcesOverrideHosts(t *testing.T) {
	c := Config{AptHosts: []string{"deb.debian.org"}, AptSources: "deb [trusted=yes] http://127.0.0.1:8080/ ./\n"}
	if got := c.Patterns("bash"); !slices.Equal(got, []string{`^127\.0\.0\.1$`}) {
		t.Errorf("Patterns(bash) = %q", got)
	}
}

func TestInstallRegistryHostsUnknownRuntime(t *testing.T) {
	if _, err := InstallRegistryHosts(t.Context(), "ruby"); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("err = %v, want invalid argument", err)
	}
	got, err := InstallRegistryHosts(t.Context(), "python")
	if err != nil || len(got) == 0 || got[0][0] != '^' {
		t.Fatalf("InstallRegistryHosts(python) = %q, %v", got, err)
	}
}

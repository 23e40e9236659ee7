package runtimes

import (
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

func TestValidatePackage(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"numpy", true},
		{"numpy==1.21.0", true},
		{"lodash@4.17.21", true},
		{"@scope/pkg", true},
		{"@types/node@20", true},
		{"zod", true},
		{"my_pkg.sub-part", true},
		{"numpy; rm -rf /", false},
		{"lodash && echo 'pwnd'", false},
		{"", false},
		{"a b", false},
		{"$(id)", false},
		{"`id`", false},
		{"pkg|sh", false},
		{"pkg\n", false},
		{"pkg\x00", false},
		{"npm:zod", false},
		{"--index-url=https://evil.example/", false},
		{"-rrequirements.txt", false},
		{"naïve", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidatePackage(tt.name)
			if tt.ok {
				if err != nil {
					t.Fatalf("ValidatePackage(%q): %v", tt.name, err)
				}
				return
			}
			if err == nil || !errdefs.IsInvalidArgument(err) {
				t.Fatalf("ValidatePackage(%q) = %v, want invalid-argument error", tt.name, err)
			}
		})
	}
	const want = `Invalid package name: "numpy; rm -rf /". Only alphanumeric, -, _, ., /, @, and = are allowed.`
	if err := ValidatePackage("numpy; rm -rf /"); err == nil || err.Error() != want {
		t.Fatalf("message = %v, want %q", err, want)
	}
}

func TestNormalizePackages(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{name: "spec example", in: []string{" numpy ", "pandas", "numpy", "", "scipy"}, want: []string{"numpy", "pandas", "scipy"}},
		{name: "nil", in: nil, want: []string{}},
		{name: "blank only", in: []string{" ", "\t", ""}, want: []string{}},
		{name: "sorted bytewise", in: []string{"b", "B", "a", "@x"}, want: []string{"@x", "B", "a", "b"}},
		{name: "dups after trim", in: []string{"x", " x", "x "}, want: []string{"x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NormalizePackages(tt.in)
			if got == nil || !slices.Equal(got, tt.want) {
				t.Fatalf("NormalizePackages(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestInstallArgv(t *testing.T) {
	pkgs := []string{"zod", " lodash@4.17.21 ", "zod"}
	tests := []struct {
		runtime string
		want    []string
	}{
		{runtime: "python", want: []string{"pip", "install", "--user", "--no-cache-dir", "--break-system-packages",
			"--disable-pip-version-check", "--retries", "0", "--timeout", "15", "lodash@4.17.21", "zod"}},
		{runtime: "node", want: []string{"npm", "install", "--prefix", "/sandbox", "lodash@4.17.21", "zod"}},
		{runtime: "bun", want: []string{"bun", "install", "-g", "--global-dir=/sandbox/.bun-global", "lodash@4.17.21", "zod"}},
		{runtime: "agent", want: []string{"bun", "install", "-g", "--global-dir=/sandbox/.bun-global", "lodash@4.17.21", "zod"}},
		{runtime: "deno", want: []string{"sh", "-c", "deno cache 'lodash@4.17.21' && deno cache 'zod'"}},
	}
	for _, tt := range tests {
		t.Run(tt.runtime, func(t *testing.T) {
			r := mustGet(t, tt.runtime)
			got, err := r.InstallArgv(pkgs)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("InstallArgv = %q, %v; want %q", got, err, tt.want)
			}
			if len(r.InstallEnv()) == 0 && tt.runtime != "bash" {
				t.Fatalf("InstallEnv empty for %s", tt.runtime)
			}
			for _, bad := range [][]string{
				{"ok", "numpy; rm -rf /"},
				{"lodash && echo 'pwnd'"},
				{"--index-url=http://evil/"},
				{"x'y"},
				{},
				{" ", ""},
			} {
				if argv, err := r.InstallArgv(bad); err == nil || !errdefs.IsInvalidArgument(err) {
					t.Errorf("InstallArgv(%q) = %q, %v; want invalid-argument error", bad, argv, err)
				}
			}
		})
	}
}

func TestInstallEnv(t *testing.T) {
	tests := []struct {
		runtime string
		want    []string
	}{
		{"python", []string{"PYTHONUSERBASE=/sandbox/.local"}},
		{"deno", []string{"DENO_DIR=/sandbox/.deno"}},
		{"bun", []string{"BUN_INSTALL_GLOBAL_DIR=/sandbox/.bun-global", "BUN_INSTALL_CACHE_DIR=/sandbox/.bun-cache", "BUN_INSTALL_BIN=/sandbox/.bun-global/bin"}},
		{"bash", nil},
	}
	for _, tt := range tests {
		t.Run(tt.runtime, func(t *testing.T) {
			if got := mustGet(t, tt.runtime).InstallEnv(); !slices.Equal(got, tt.want) {
				t.Fatalf("InstallEnv = %q, want %q", got, tt.want)
			}
		})
	}
	node := mustGet(t, "node").InstallEnv()
	for _, kv := range []string{"NPM_CONFIG_PREFIX=/sandbox/.npm-global", "npm_config_cache=/sandbox/.npm-cache",
		"NPM_CONFIG_FETCH_RETRIES=0", "npm_config_fetch_retry_maxtimeout=2000"} {
		if !slices.Contains(node, kv) {
			t.Errorf("node InstallEnv lacks %q", kv)
		}
	}
}

// Bash has no unprivileged package manager: its installs are refused
// rather than run as root.
func TestInstallArgvRefusesBash(t *testing.T) {
	r := mustGet(t, "bash")
	argv, err := r.InstallArgv([]string{"curl"})
	if err == nil || !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "bash") {
		t.Fatalf("InstallArgv(bash) = %q, %v; want an invalid-argument error naming bash", argv, err)
	}
}

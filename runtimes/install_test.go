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
			"--disable-pip-version-check", "--no-input", "--retries", "0", "--timeout", "15", "lodash@4.17.21", "zod"}},
		{runtime: "node", want: []string{"npm", "install", "--prefix", "/sandbox", "--no-audit", "--no-fund", "lodash@4.17.21", "zod"}},
		{runtime: "bun", want: []string{"bun", "add", "--cwd=/sandbox", "--no-progress", "lodash@4.17.21", "zod"}},
		{runtime: "agent", want: []string{"bun", "add", "--cwd=/sandbox", "--no-progress", "lodash@4.17.21", "zod"}},
		{runtime: "deno", want: []string{"deno", "cache", "npm:lodash@4.17.21", "npm:zod"}},
	}
	for _, tt := range tests {
		t.Run(tt.runtime, func(t *testing.T) {
			r := mustGet(t, tt.runtime)
			pkgs := pkgs
			if tt.runtime == "python" {
				pkgs = []string{"zod", " lodash==4.17.21 ", "zod"}
				tt.want[len(tt.want)-2] = "lodash==4.17.21"
			}
			got, err := r.InstallArgv(pkgs)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("InstallArgv = %q, %v; want %q", got, err, tt.want)
			}
			if len(r.InstallEnv()) == 0 {
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
	if got, _ := mustGet(t, "deno").InstallArgv([]string{"jsr:@std/path@1", "npm:zod"}); !slices.Equal(got, []string{"deno", "cache", "jsr:@std/path@1", "npm:zod"}) {
		t.Errorf("deno prefixes = %q", got)
	}
}

// Every ecosystem refuses options, URLs, paths, VCS references and shell
// text, and admits names with versions.
func TestValidateInstall(t *testing.T) {
	hostile := []string{
		"numpy; curl x|sh", "--index-url http://evil", "--index-url=http://evil", "-e .", "-e", ".", "./pkg", "/tmp/x",
		"git+https://github.com/a/b", "https://evil.example/x.tgz", "file:../x", "a b", "$(id)", "`id`", "x\ny",
		"pkg\x00", "pkg|sh", "pkg>/tmp/x;", "~/x", "", strings.Repeat("a", 215),
	}
	tests := map[string]struct{ ok, bad []string }{
		"python": {
			ok:  []string{"numpy", "numpy==1.26", "numpy==1.26.*", "requests[socks,security]>=2.0,<3", "zope.interface~=6.0", "A_b-c.d", "x!=1.0"},
			bad: []string{"numpy @ https://x/y.whl", "numpy;python_version<'3'", "numpy==", "-r", "req.txt[", "pkg@1.0", ".hidden"},
		},
		"node": {
			ok:  []string{"left-pad", "left-pad@1.3.0", "@scope/pkg@^1", "@types/node", "lodash@latest", "x@>=1.2.3", "x@~1.2", "x@1.x||2.x"},
			bad: []string{"user/repo", "npm:zod", "@scope/a/b", "git://x/y", "github:a/b", "x@file:../y", "x@http://e/t.tgz", "@scope", ".x", "_x", "x#tag"},
		},
		"deno": {
			ok:  []string{"left-pad", "npm:left-pad@1.3.0", "npm:@scope/pkg@^1", "jsr:@std/path", "jsr:@std/path@^1.0"},
			bad: []string{"https://deno.land/x/y.ts", "jsr:std/path", "npm:npm:x", "node:fs", "file:///etc/passwd", "data:x"},
		},
		"bash": {
			ok:  []string{"jq", "sqlite3", "libc6=2.36-9+deb12u10", "g++", "git=1:2.39.5-0+deb12u1"},
			bad: []string{"JQ", "jq/bookworm", "./x.deb", "jq=", "j", "x:amd64"},
		},
	}
	for rt, tt := range tests {
		r := mustGet(t, rt)
		for _, name := range tt.ok {
			if err := r.ValidateInstall(name); err != nil {
				t.Errorf("%s: ValidateInstall(%q) = %v, want ok", rt, name, err)
			}
		}
		for _, name := range append(slices.Clone(tt.bad), hostile...) {
			err := r.ValidateInstall(name)
			if err == nil || !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "Invalid package name for "+rt) {
				t.Errorf("%s: ValidateInstall(%q) = %v, want an invalid-argument error", rt, name, err)
			}
		}
	}
	many := make([]string, MaxInstallPackages+1)
	for i := range many {
		many[i] = "p" + strings.Repeat("x", i+1)
	}
	if _, err := mustGet(t, "python").ValidateInstalls(many); !errdefs.IsInvalidArgument(err) {
		t.Errorf("ValidateInstalls(%d packages) = %v, want invalid argument", len(many), err)
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

// Bash installs run apt as the sandbox user with the names as arguments
// of a fixed script, never inside it; the unpacked prefix leads PATH.
func TestInstallArgvBash(t *testing.T) {
	r := mustGet(t, "bash")
	argv, err := r.InstallArgv([]string{"jq", "curl"})
	if err != nil || len(argv) != 6 || argv[0] != "bash" || argv[1] != "-c" || argv[3] != "isol8-apt" ||
		!slices.Equal(argv[4:], []string{"curl", "jq"}) || strings.Contains(argv[2], "jq") {
		t.Fatalf("InstallArgv(bash) = %q, %v", argv, err)
	}
	env := r.InstalledEnv([]string{"git=1:2.39"}, "/usr/bin")
	if len(env) != 4 || !strings.HasPrefix(env[0], "PATH=/sandbox/.apt/root/usr/local/bin:") || !strings.HasSuffix(env[0], ":/usr/bin") ||
		!strings.HasPrefix(env[1], "LD_LIBRARY_PATH=/sandbox/.apt/root/usr/lib/") || env[2] != "GIT_EXEC_PATH=/sandbox/.apt/root/usr/lib/git-core" {
		t.Fatalf("InstalledEnv = %q", env)
	}
	if env := r.InstalledEnv([]string{"jq"}, "/usr/bin"); len(env) != 2 {
		t.Fatalf("InstalledEnv(jq) = %q", env)
	}
	if env := mustGet(t, "python").InstalledEnv([]string{"numpy"}, "/usr/bin"); env != nil {
		t.Fatalf("python InstalledEnv = %q", env)
	}
}

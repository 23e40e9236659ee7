package engine

import (
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/isol8/isol8/agent"
	"github.com/isol8/isol8/registry"
	"github.com/isol8/isol8/runtimes"
)

func TestInstallNetwork(t *testing.T) {
	pats := []string{`^pypi\.org$`, `^files\.pythonhosted\.org$`}
	for _, tc := range []struct {
		name      string
		in        Options
		explicit  bool
		network   string
		whitelist []string
		blacklist []string
	}{
		{name: "no network chosen becomes filtered", in: Options{}, network: NetworkFiltered, whitelist: pats, blacklist: []string{}},
		{name: "default none not chosen becomes filtered", in: Options{Network: NetworkNone}, network: NetworkFiltered, whitelist: pats, blacklist: []string{}},
		{name: "explicit host stays host", in: Options{Network: NetworkHost}, explicit: true, network: NetworkHost},
		{name: "explicit none stays none", in: Options{Network: NetworkNone}, explicit: true, network: NetworkNone},
		{name: "explicit filtered appends without duplicates, keeps deny",
			in:       Options{Network: NetworkFiltered, NetworkFilter: &NetworkFilter{Whitelist: []string{"a", `^pypi\.org$`}, Blacklist: []string{"b"}}},
			explicit: true, network: NetworkFiltered,
			whitelist: []string{"a", `^pypi\.org$`, `^files\.pythonhosted\.org$`}, blacklist: []string{"b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before []string
			if tc.in.NetworkFilter != nil {
				before = slices.Clone(tc.in.NetworkFilter.Whitelist)
			}
			o := InstallNetwork(tc.in, tc.explicit, pats)
			if o.Network != tc.network {
				t.Fatalf("network = %q, want %q", o.Network, tc.network)
			}
			if tc.whitelist == nil {
				if o.NetworkFilter != tc.in.NetworkFilter {
					t.Fatalf("filter changed: %+v", o.NetworkFilter)
				}
				return
			}
			if !slices.Equal(o.NetworkFilter.Whitelist, tc.whitelist) || !slices.Equal(o.NetworkFilter.Blacklist, tc.blacklist) {
				t.Fatalf("filter = %+v, want %q / %q", o.NetworkFilter, tc.whitelist, tc.blacklist)
			}
			if tc.in.NetworkFilter != nil && !slices.Equal(tc.in.NetworkFilter.Whitelist, before) {
				t.Fatalf("the caller's filter was modified: %q", tc.in.NetworkFilter.Whitelist)
			}
		})
	}
}

func envValue(env []string, key string) (string, bool) {
	v, ok := "", false
	for _, kv := range env {
		if k, val, found := strings.Cut(kv, "="); found && k == key {
			v, ok = val, true // the last one wins, as in the sandbox
		}
	}
	return v, ok
}

// What a plan with installs carries: the registry variables (a secret of
// the same name wins), the installed prefix for bash, the operator's apt
// sources as a file; without a network installs are refused.
func TestPlanInstall(t *testing.T) {
	reg := &registry.Config{PipIndexURL: "https://mirror.example/simple", NpmRegistry: "https://npm.example/",
		AptSources: "deb http://deb.example/debian bookworm main\n"}
	e, err := New(Options{Network: NetworkHost, Registries: reg, Secrets: map[string]string{"NPM_CONFIG_REGISTRY": "https://u:p@npm.example/"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.plan(Request{Runtime: "python", Code: "1", InstallPackages: []string{"numpy", " numpy"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.install, []string{"numpy"}) {
		t.Fatalf("install = %q", p.install)
	}
	for _, env := range [][]string{p.env, p.setupEnv} {
		if v, _ := envValue(env, "PIP_INDEX_URL"); v != "https://mirror.example/simple" {
			t.Errorf("PIP_INDEX_URL = %q", v)
		}
	}
	p, err = e.plan(Request{Runtime: "deno", Code: "1", InstallPackages: []string{"zod"}})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := envValue(p.env, "NPM_CONFIG_REGISTRY"); v != "https://u:p@npm.example/" {
		t.Errorf("NPM_CONFIG_REGISTRY = %q: the secret must win", v)
	}
	if v, _ := envValue(p.env, "npm_config_registry"); v != "https://npm.example/" {
		t.Errorf("npm_config_registry = %q", v)
	}

	p, err = e.plan(Request{Runtime: "bash", Code: "jq .", InstallPackages: []string{"jq"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range [][]string{p.env, p.setupEnv} {
		if v, _ := envValue(env, "PATH"); !strings.HasPrefix(v, runtimes.AptRoot+"/usr/local/bin:") {
			t.Errorf("PATH = %q", v)
		}
		if v, _ := envValue(env, "LD_LIBRARY_PATH"); !strings.HasPrefix(v, runtimes.AptRoot+"/usr/lib/") {
			t.Errorf("LD_LIBRARY_PATH = %q", v)
		}
	}
	if v, _ := envValue(p.setupEnv, "PATH"); !strings.HasSuffix(v, runtimes.SetupPath()) {
		t.Errorf("setup PATH = %q", v)
	}
	if !slices.ContainsFunc(p.files, func(f agent.File) bool { return f.Path == runtimes.AptSourcesFile && string(f.Data) == reg.AptSources }) {
		t.Errorf("apt sources file missing: %+v", p.files)
	}

	// No installs: no registry variables.
	p, err = e.plan(Request{Runtime: "python", Code: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := envValue(p.env, "PIP_INDEX_URL"); ok {
		t.Errorf("PIP_INDEX_URL set without installs")
	}

	none, err := New(Options{Registries: reg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := none.plan(Request{Runtime: "node", Code: "1", InstallPackages: []string{"zod"}}); err == nil ||
		err.Error() != TextInstallNeedsNetwork || !errdefs.IsInvalidArgument(err) {
		t.Fatalf("install with network none: %v", err)
	}
	if _, err := e.plan(Request{Runtime: "node", Code: "1", InstallPackages: []string{"zod", "--registry=http://evil"}}); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("hostile name: %v", err)
	}
}

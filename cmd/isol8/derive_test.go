package main

import (
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/isol8/isol8/config"
	"github.com/isol8/isol8/engine"
)

var pypiPatterns = []string{`^pypi\.org$`, `^files\.pythonhosted\.org$`}

func fakeRegistry(rt string) []string {
	switch rt {
	case "python":
		return pypiPatterns
	case "node", "bun", "agent":
		return []string{`^registry\.npmjs\.org$`}
	}
	return nil
}

// flagsFor builds validated run flags; set lists the flags "given".
func flagsFor(t *testing.T, f runFlags, set ...string) *runFlags {
	t.Helper()
	f.set = map[string]bool{}
	for _, s := range set {
		f.set[s] = true
	}
	if err := f.validate(); err != nil {
		t.Fatal(err)
	}
	return &f
}

func mustParse(t *testing.T, js string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func filterOf(o engine.Options) (white, black []string) {
	if o.NetworkFilter == nil {
		return nil, nil
	}
	return o.NetworkFilter.Whitelist, o.NetworkFilter.Blacklist
}

// Items 21–23 and the [GO] fallbacks of surface.md §1.1.3.
func TestDeriveOptions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		flags   runFlags
		set     []string
		config  string
		runtime string
		check   func(t *testing.T, o engine.Options)
	}{
		{name: "defaults", check: func(t *testing.T, o engine.Options) {
			want := engine.Options{Mode: "ephemeral", Network: "none", MemoryLimit: "512m", CPULimit: 1, TimeoutMs: 30000,
				SandboxSize: "512m", TmpSize: "256m", MaxConcurrent: 10, Security: &engine.Security{Seccomp: "strict"},
				PoolSize: &engine.PoolSize{}}
			ro := true
			want.ReadonlyRootFs = &ro
			if !reflect.DeepEqual(o, want) {
				t.Errorf("options =\n%+v\nwant\n%+v", o, want)
			}
		}},
		{name: "install without --net is filtered with registry patterns", flags: runFlags{install: []string{"x"}},
			check: func(t *testing.T, o engine.Options) {
				white, _ := filterOf(o)
				if o.Network != "filtered" || !slices.Equal(white, pypiPatterns) {
					t.Errorf("network %q whitelist %v", o.Network, white)
				}
			}},
		{name: "explicit --net host with install stays host", flags: runFlags{net: "host", install: []string{"x"}}, set: []string{"net"},
			check: func(t *testing.T, o engine.Options) {
				white, _ := filterOf(o)
				if o.Network != "host" || len(white) != 0 {
					t.Errorf("network %q whitelist %v", o.Network, white)
				}
			}},
		{name: "explicit --net none with install stays none", flags: runFlags{net: "none", install: []string{"x"}}, set: []string{"net"},
			check: func(t *testing.T, o engine.Options) {
				if o.Network != "none" {
					t.Errorf("network %q", o.Network)
				}
			}},
		{name: "filtered install appends de-duplicated patterns", set: []string{"net"},
			flags: runFlags{net: "filtered", install: []string{"x"}, allow: []string{"a", `^pypi\.org$`, "a"}},
			check: func(t *testing.T, o engine.Options) {
				white, _ := filterOf(o)
				if want := []string{"a", `^pypi\.org$`, `^files\.pythonhosted\.org$`}; !slices.Equal(white, want) {
					t.Errorf("whitelist %v, want %v", white, want)
				}
			}},
		{name: "node registry", flags: runFlags{install: []string{"lodash"}}, runtime: "node",
			check: func(t *testing.T, o engine.Options) {
				white, _ := filterOf(o)
				if !slices.Equal(white, []string{`^registry\.npmjs\.org$`}) {
					t.Errorf("whitelist %v", white)
				}
			}},
		{name: "filtered without install adds no registry", flags: runFlags{net: "filtered", allow: []string{"a"}}, set: []string{"net"},
			check: func(t *testing.T, o engine.Options) {
				white, _ := filterOf(o)
				if !slices.Equal(white, []string{"a"}) {
					t.Errorf("whitelist %v", white)
				}
			}},
		{name: "agent defaults", runtime: "agent", check: func(t *testing.T, o engine.Options) {
			if o.PidsLimit != 200 || o.SandboxSize != "2g" {
				t.Errorf("pids %d sandbox %q", o.PidsLimit, o.SandboxSize)
			}
		}},
		{name: "agent with flags", runtime: "agent", flags: runFlags{pidsLimit: "50", sandboxSize: "1g"}, set: []string{"pids-limit", "sandbox-size"},
			check: func(t *testing.T, o engine.Options) {
				if o.PidsLimit != 50 || o.SandboxSize != "1g" {
					t.Errorf("pids %d sandbox %q", o.PidsLimit, o.SandboxSize)
				}
			}},
		{name: "python has engine default pids", check: func(t *testing.T, o engine.Options) {
			if o.PidsLimit != 0 {
				t.Errorf("pids %d, want 0 (engine default)", o.PidsLimit)
			}
		}},
		{name: "secrets", flags: runFlags{secrets: []string{"A=b=c", "novalue", "=x", "K="}}, check: func(t *testing.T, o engine.Options) {
			if !maps.Equal(o.Secrets, map[string]string{"A": "b=c", "K": ""}) {
				t.Errorf("secrets %v", o.Secrets)
			}
		}},
		{name: "allow and deny replace config lists", flags: runFlags{allow: []string{"x"}, deny: []string{"y"}},
			config: `{"network":{"whitelist":["cw"],"blacklist":["cb"]}}`,
			check: func(t *testing.T, o engine.Options) {
				white, black := filterOf(o)
				if !slices.Equal(white, []string{"x"}) || !slices.Equal(black, []string{"y"}) {
					t.Errorf("white %v black %v", white, black)
				}
			}},
		{name: "config lists used without flags", config: `{"network":{"whitelist":["cw"],"blacklist":["cb"]}}`,
			check: func(t *testing.T, o engine.Options) {
				white, black := filterOf(o)
				if !slices.Equal(white, []string{"cw"}) || !slices.Equal(black, []string{"cb"}) {
					t.Errorf("white %v black %v", white, black)
				}
			}},
		{name: "only deny replaces", flags: runFlags{deny: []string{"y"}}, config: `{"network":{"whitelist":["cw"],"blacklist":["cb"]}}`,
			check: func(t *testing.T, o engine.Options) {
				white, black := filterOf(o)
				if !slices.Equal(white, []string{"cw"}) || !slices.Equal(black, []string{"y"}) {
					t.Errorf("white %v black %v", white, black)
				}
			}},
		{name: "config fallbacks", config: `{"defaults":{"timeoutMs":10000,"memoryLimit":"1g","cpuLimit":2,"network":"host",` +
			`"sandboxSize":"300m","tmpSize":"100m","readonlyRootFs":false},"security":{"seccomp":"unconfined"},"debug":true,"maxConcurrent":2}`,
			check: func(t *testing.T, o engine.Options) {
				if o.TimeoutMs != 10000 || o.MemoryLimit != "1g" || o.CPULimit != 2 || o.Network != "host" ||
					o.SandboxSize != "300m" || o.TmpSize != "100m" || *o.ReadonlyRootFs || o.Security.Seccomp != "unconfined" ||
					!o.Debug || o.MaxConcurrent != 2 {
					t.Errorf("options %+v", o)
				}
			}},
		{name: "flags beat config", config: `{"defaults":{"timeoutMs":10000,"memoryLimit":"1g","cpuLimit":2,"network":"host","sandboxSize":"300m","tmpSize":"100m"}}`,
			flags: runFlags{timeout: "100", memory: "256m", cpu: "0.5", net: "none", sandboxSize: "64m", tmpSize: "32m", maxOutput: "1024", pidsLimit: "32"},
			set:   []string{"timeout", "memory", "cpu", "net", "sandbox-size", "tmp-size", "max-output", "pids-limit"},
			check: func(t *testing.T, o engine.Options) {
				if o.TimeoutMs != 100 || o.MemoryLimit != "256m" || o.CPULimit != 0.5 || o.Network != "none" ||
					o.SandboxSize != "64m" || o.TmpSize != "32m" || o.MaxOutputSize != 1024 || o.PidsLimit != 32 {
					t.Errorf("options %+v", o)
				}
			}},
		{name: "config network host with install becomes filtered", config: `{"defaults":{"network":"host"}}`, flags: runFlags{install: []string{"x"}},
			check: func(t *testing.T, o engine.Options) {
				if o.Network != "filtered" {
					t.Errorf("network %q", o.Network)
				}
			}},
		{name: "session id implies persistent", flags: runFlags{sessionID: "s1"}, check: func(t *testing.T, o engine.Options) {
			if o.Mode != "persistent" {
				t.Errorf("mode %q", o.Mode)
			}
		}},
		{name: "writable", flags: runFlags{writable: true}, check: func(t *testing.T, o engine.Options) {
			if o.ReadonlyRootFs == nil || *o.ReadonlyRootFs {
				t.Error("root filesystem is read-only")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Defaults()
			if tc.config != "" {
				cfg = mustParse(t, tc.config)
			}
			rt := tc.runtime
			if rt == "" {
				rt = "python"
			}
			tc.check(t, deriveOptions(flagsFor(t, tc.flags, tc.set...), cfg, rt, fakeRegistry))
		})
	}
}

// The same derivation through the CLI, with the literal --net rule. Issue
// 8: installs, the agent and the filtered network are refused by the CLI
// until they exist (TestRunUnbuiltRefused); what still reaches the engine
// is checked here.
func TestRunDerivationThroughCLI(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		network string
		white   []string
	}{
		{[]string{"--net", "host"}, "host", nil},
		{[]string{"--net=host", "--allow", "a"}, "host", []string{"a"}},
		{nil, "none", nil},
	} {
		h := newHarness(t)
		r := h.run(append([]string{"run", "-e", "1"}, tc.args...)...)
		wantCode(t, r, 0)
		white, _ := filterOf(*h.opts)
		if h.opts.Network != tc.network || !slices.Equal(white, tc.white) {
			t.Errorf("%v: network %q whitelist %v; want %q %v", tc.args, h.opts.Network, white, tc.network, tc.white)
		}
	}
}

package main

import (
	"strings"
	"testing"
)

// A config file in the working directory (a cloned repository, say) must not
// pick the host binary isol8 runs as root, nor weaken the sandbox. Before
// this test, ./isol8.config.json with containerd.runtime and
// security.seccomp "unconfined" applied silently.
func TestWorkdirConfigCannotWeakenSandbox(t *testing.T) {
	for _, doc := range []string{
		`{"containerd":{"runtime":"/tmp/evil"}}`,
		`{"security":{"seccomp":"unconfined"}}`,
		`{"defaults":{"network":"host"}}`,
	} {
		h := newHarness(t)
		path := write(t, h.cwd, "isol8.config.json", doc)
		r := h.run("run", "-e", "1")
		wantCode(t, r, 1)
		if !strings.HasPrefix(r.stderr, "[ERR] Untrusted config file "+path+": ") ||
			!strings.Contains(r.stderr, "--config PATH") {
			t.Errorf("%s: stderr = %q", doc, r.stderr)
		}
		if len(h.fake.reqs) != 0 {
			t.Errorf("%s: a request reached the engine", doc)
		}
		// Named explicitly, the same file is the user's choice.
		r = h.run("--config", path, "run", "-e", "1")
		wantCode(t, r, 0)
	}
}

// A weakened sandbox prints one [WARN] line on every run.
func TestWeakenedSandboxWarns(t *testing.T) {
	tests := []struct {
		name   string
		config string
		args   []string
		want   string
	}{
		{"default", "", nil, ""},
		{"host network flag", "", []string{"--net", "host"}, "[WARN] Sandbox weakened: host network\n"},
		{"writable flag", "", []string{"--writable"}, "[WARN] Sandbox weakened: writable root filesystem\n"},
		{"all from config", `{"security":{"seccomp":"unconfined"},"defaults":{"network":"host","readonlyRootFs":false}}`, nil,
			"[WARN] Sandbox weakened: seccomp unconfined, host network, writable root filesystem\n"},
		{"private destinations, filtered", `{"network":{"allowPrivateDestinations":true}}`, []string{"--net", "filtered"},
			"[WARN] Sandbox weakened: filtered network may reach private addresses\n"},
		{"private destinations, none", `{"network":{"allowPrivateDestinations":true}}`, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			args := []string{"run", "-e", "1"}
			if tt.config != "" {
				args = append([]string{"--config", write(t, h.cwd, "explicit.json", tt.config)}, args...)
			}
			for i := 0; i < 2; i++ {
				r := h.run(append(args, tt.args...)...)
				wantCode(t, r, 0)
				got := ""
				for _, line := range strings.SplitAfter(r.stderr, "\n") {
					if strings.Contains(line, "Sandbox weakened") {
						got += line
					}
				}
				if got != tt.want {
					t.Fatalf("run %d: warning = %q, want %q (stderr %q)", i+1, got, tt.want, r.stderr)
				}
			}
		})
	}
}

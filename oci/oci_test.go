package oci

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/isol8/isol8/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func mountAt(t *testing.T, s *specs.Spec, dest string) specs.Mount {
	t.Helper()
	var found []specs.Mount
	for _, m := range s.Mounts {
		if m.Destination == dest {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d mounts at %s, want 1", len(found), dest)
	}
	return found[0]
}

func hasMount(s *specs.Spec, dest string) bool {
	return slices.ContainsFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == dest })
}

func netns(s *specs.Spec) []specs.LinuxNamespace {
	var out []specs.LinuxNamespace
	for _, n := range s.Linux.Namespaces {
		if n.Type == specs.NetworkNamespace {
			out = append(out, n)
		}
	}
	return out
}

func sorted(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return out
}

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func TestBaseline(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	wantCaps := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID"}
	p := s.Process
	for _, tc := range []struct {
		name  string
		check func(t *testing.T)
	}{
		{"version", func(t *testing.T) { eq(t, "version", s.Version, specs.Version) }},
		{"user is uid 0 gid 0", func(t *testing.T) {
			eq(t, "uid", p.User.UID, 0)
			eq(t, "gid", p.User.GID, 0)
			eq(t, "additional gids", len(p.User.AdditionalGids), 0)
		}},
		{"capabilities exact", func(t *testing.T) {
			c := p.Capabilities
			for name, set := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective, "permitted": c.Permitted} {
				if !slices.Equal(sorted(set), wantCaps) {
					t.Errorf("%s = %v, want %v", name, set, wantCaps)
				}
			}
			eq(t, "inheritable", len(c.Inheritable), 0)
			eq(t, "ambient", len(c.Ambient), 0)
		}},
		{"capabilities match the seccomp profile's", func(t *testing.T) {
			if !slices.Equal(sorted(seccomp.Capabilities()), sorted(p.Capabilities.Bounding)) {
				t.Errorf("seccomp flattens for %v, spec grants %v", seccomp.Capabilities(), p.Capabilities.Bounding)
			}
		}},
		{"no_new_privs", func(t *testing.T) { eq(t, "noNewPrivileges", p.NoNewPrivileges, true) }},
		{"cwd, env, terminal, args", func(t *testing.T) {
			eq(t, "cwd", p.Cwd, "/")
			eq(t, "terminal", p.Terminal, false)
			if !slices.Equal(p.Env, []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}) {
				t.Errorf("env = %v", p.Env)
			}
			eq(t, "args", len(p.Args), 0)
		}},
		{"rlimits", func(t *testing.T) {
			if !slices.Equal(p.Rlimits, []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}}) {
				t.Errorf("rlimits = %+v", p.Rlimits)
			}
		}},
		{"root", func(t *testing.T) {
			eq(t, "root", *s.Root, specs.Root{Path: "rootfs", Readonly: true})
		}},
		{"hostname", func(t *testing.T) { eq(t, "hostname", s.Hostname, "sandbox") }},
		{"mounts", func(t *testing.T) {
			want := map[string]struct{ typ, opts string }{
				"/proc":          {"proc", "nosuid,noexec,nodev"},
				"/dev":           {"tmpfs", "nosuid,strictatime,mode=755,size=65536k"},
				"/dev/pts":       {"devpts", "nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5"},
				"/dev/shm":       {"tmpfs", "nosuid,noexec,nodev,mode=1777,size=65536k"},
				"/dev/mqueue":    {"mqueue", "nosuid,noexec,nodev"},
				"/sys":           {"sysfs", "nosuid,noexec,nodev,ro"},
				"/sys/fs/cgroup": {"cgroup", "nosuid,noexec,nodev,relatime,ro"},
				"/sandbox":       {"tmpfs", "rw,exec,nosuid,nodev,size=536870912,uid=100,gid=101,mode=0755"},
				"/tmp":           {"tmpfs", "rw,noexec,nosuid,nodev,size=268435456,mode=1777"},
			}
			eq(t, "mount count", len(s.Mounts), len(want))
			for dest, w := range want {
				m := mountAt(t, s, dest)
				eq(t, dest+" type", m.Type, w.typ)
				eq(t, dest+" options", strings.Join(m.Options, ","), w.opts)
			}
			// /dev before /dev/pts, /sys before /sys/fs/cgroup: order matters.
			var order []string
			for _, m := range s.Mounts {
				order = append(order, m.Destination)
			}
			if slices.Index(order, "/dev") > slices.Index(order, "/dev/pts") || slices.Index(order, "/sys") > slices.Index(order, "/sys/fs/cgroup") {
				t.Errorf("mount order %v", order)
			}
		}},
		{"namespaces", func(t *testing.T) {
			var got []string
			for _, n := range s.Linux.Namespaces {
				got = append(got, string(n.Type))
				eq(t, string(n.Type)+" path", n.Path, "")
			}
			if !slices.Equal(sorted(got), []string{"ipc", "mount", "network", "pid", "uts"}) {
				t.Errorf("namespaces = %v", got)
			}
		}},
		{"masked paths", func(t *testing.T) {
			for _, m := range []string{"/proc/kcore", "/proc/keys", "/sys/firmware", "/proc/acpi", "/proc/asound",
				"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
				"/sys/devices/virtual/powercap", "/sys/kernel"} {
				if !slices.Contains(s.Linux.MaskedPaths, m) {
					t.Errorf("%s not masked", m)
				}
			}
		}},
		{"readonly paths", func(t *testing.T) {
			if !slices.Equal(sorted(s.Linux.ReadonlyPaths), []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}) {
				t.Errorf("readonly paths = %v", s.Linux.ReadonlyPaths)
			}
		}},
		{"devices", func(t *testing.T) {
			eq(t, "host devices", len(s.Linux.Devices), 0)
			d := s.Linux.Resources.Devices
			if len(d) == 0 || d[0].Allow || d[0].Type != "" || d[0].Major != nil || d[0].Access != "rwm" {
				t.Fatalf("first device rule = %+v, want deny all", d)
			}
			var allowed []string
			for _, r := range d[1:] {
				if !r.Allow || r.Type != "c" || r.Major == nil {
					t.Errorf("unexpected device rule %+v", r)
					continue
				}
				minor := "*"
				if r.Minor != nil {
					minor = itoa(*r.Minor)
				}
				allowed = append(allowed, itoa(*r.Major)+":"+minor)
			}
			want := []string{"1:3", "1:5", "1:7", "1:8", "1:9", "5:0", "5:2", "136:*"}
			if !slices.Equal(sorted(allowed), sorted(want)) {
				t.Errorf("allowed devices = %v, want %v", allowed, want)
			}
		}},
		{"limits", func(t *testing.T) {
			r := s.Linux.Resources
			eq(t, "memory", *r.Memory.Limit, 512<<20)
			eq(t, "swap", *r.Memory.Swap, *r.Memory.Limit)
			eq(t, "quota", *r.CPU.Quota, 100000)
			eq(t, "period", *r.CPU.Period, 100000)
			eq(t, "pids", *r.Pids.Limit, 64)
		}},
		{"seccomp unset", func(t *testing.T) {
			if s.Linux.Seccomp != nil {
				t.Error("New() alone must leave seccomp nil (engine sets it)")
			}
		}},
		{"marshals", func(t *testing.T) {
			if _, err := json.Marshal(s); err != nil {
				t.Error(err)
			}
		}},
	} {
		t.Run(tc.name, tc.check)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestOpts(t *testing.T) {
	profile := &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}},
	}
	for _, tc := range []struct {
		name  string
		opts  []Opt
		check func(t *testing.T, s *specs.Spec)
	}{
		{"init", []Opt{WithInit("/usr/local/lib/isol8/isol8-init")}, func(t *testing.T, s *specs.Spec) {
			m := mountAt(t, s, "/.isol8-init")
			eq(t, "type", m.Type, "bind")
			eq(t, "source", m.Source, "/usr/local/lib/isol8/isol8-init")
			eq(t, "options", strings.Join(m.Options, ","), "bind,ro,nosuid,nodev")
			if !slices.Equal(s.Process.Args, []string{"/.isol8-init"}) {
				t.Errorf("args = %v", s.Process.Args)
			}
		}},
		{"init twice keeps one mount", []Opt{WithInit("/a/init"), WithInit("/b/init")}, func(t *testing.T, s *specs.Spec) {
			eq(t, "source", mountAt(t, s, "/.isol8-init").Source, "/b/init")
		}},
		{"memory", []Opt{WithMemory(1 << 30)}, func(t *testing.T, s *specs.Spec) {
			eq(t, "limit", *s.Linux.Resources.Memory.Limit, 1<<30)
			eq(t, "swap", *s.Linux.Resources.Memory.Swap, 1<<30)
		}},
		{"cpu", []Opt{WithCPU(1.5)}, func(t *testing.T, s *specs.Spec) {
			eq(t, "quota", *s.Linux.Resources.CPU.Quota, 150000)
			eq(t, "period", *s.Linux.Resources.CPU.Period, 100000)
		}},
		{"cpu floors", []Opt{WithCPU(0.333333)}, func(t *testing.T, s *specs.Spec) {
			eq(t, "quota", *s.Linux.Resources.CPU.Quota, 33333)
		}},
		{"pids", []Opt{WithPids(200)}, func(t *testing.T, s *specs.Spec) {
			eq(t, "pids", *s.Linux.Resources.Pids.Limit, 200)
		}},
		{"sandbox tmpfs", []Opt{WithSandboxTmpfs(64 << 20)}, func(t *testing.T, s *specs.Spec) {
			m := mountAt(t, s, "/sandbox")
			eq(t, "type", m.Type, "tmpfs")
			eq(t, "options", strings.Join(m.Options, ","), "rw,exec,nosuid,nodev,size=67108864,uid=100,gid=101,mode=0755")
		}},
		{"tmp tmpfs", []Opt{WithTmpTmpfs(1 << 20)}, func(t *testing.T, s *specs.Spec) {
			eq(t, "options", strings.Join(mountAt(t, s, "/tmp").Options, ","), "rw,noexec,nosuid,nodev,size=1048576,mode=1777")
		}},
		{"writable root", []Opt{WithReadonlyRoot(false)}, func(t *testing.T, s *specs.Spec) {
			eq(t, "readonly", s.Root.Readonly, false)
			eq(t, "path", s.Root.Path, "rootfs")
		}},
		{"network none", []Opt{WithNetwork("none", "")}, func(t *testing.T, s *specs.Spec) {
			if n := netns(s); len(n) != 1 || n[0].Path != "" {
				t.Errorf("network namespaces = %+v, want one new", n)
			}
			if hasMount(s, "/etc/resolv.conf") {
				t.Error("resolv.conf mounted in none mode")
			}
		}},
		{"network host", []Opt{WithNetwork("host", "")}, func(t *testing.T, s *specs.Spec) {
			if n := netns(s); len(n) != 0 {
				t.Errorf("network namespaces = %+v, want none (host)", n)
			}
			for _, f := range []string{"/etc/resolv.conf", "/etc/hosts"} {
				m := mountAt(t, s, f)
				eq(t, f+" source", m.Source, f)
				eq(t, f+" type", m.Type, "bind")
				if !slices.Contains(m.Options, "ro") {
					t.Errorf("%s options %v lack ro", f, m.Options)
				}
			}
			eq(t, "other namespaces", len(s.Linux.Namespaces), 4)
		}},
		{"network filtered", []Opt{WithNetwork("filtered", "/run/isol8/netns/n1")}, func(t *testing.T, s *specs.Spec) {
			if n := netns(s); len(n) != 1 || n[0].Path != "/run/isol8/netns/n1" {
				t.Errorf("network namespaces = %+v, want join /run/isol8/netns/n1", n)
			}
		}},
		{"network host then none", []Opt{WithNetwork("host", ""), WithNetwork("none", "")}, func(t *testing.T, s *specs.Spec) {
			if n := netns(s); len(n) != 1 || n[0].Path != "" {
				t.Errorf("network namespaces = %+v", n)
			}
			if hasMount(s, "/etc/resolv.conf") || hasMount(s, "/etc/hosts") {
				t.Error("host files still mounted")
			}
		}},
		{"seccomp", []Opt{WithSeccomp(profile)}, func(t *testing.T, s *specs.Spec) {
			got := s.Linux.Seccomp
			if got == nil || got == profile || got.DefaultAction != specs.ActErrno || len(got.Syscalls) != 1 {
				t.Fatalf("seccomp = %+v", got)
			}
			got.Syscalls[0].Names[0] = "write"
			if profile.Syscalls[0].Names[0] != "read" {
				t.Error("WithSeccomp shares the caller's profile")
			}
		}},
		{"seccomp nil is unconfined", []Opt{WithSeccomp(profile), WithSeccomp(nil)}, func(t *testing.T, s *specs.Spec) {
			if s.Linux.Seccomp != nil {
				t.Error("seccomp not cleared")
			}
		}},
		{"env", []Opt{WithEnv([]string{"A=1", "PATH=/bin", "B=x=y"}), WithEnv([]string{"A=2"})}, func(t *testing.T, s *specs.Spec) {
			if !slices.Equal(s.Process.Env, []string{"PATH=/bin", "B=x=y", "A=2"}) {
				t.Errorf("env = %v", s.Process.Env)
			}
		}},
		{"hostname", []Opt{WithHostname("isol8-abc.local")}, func(t *testing.T, s *specs.Spec) {
			eq(t, "hostname", s.Hostname, "isol8-abc.local")
		}},
		{"cgroups path", []Opt{WithCgroupsPath("/isol8/sb-1")}, func(t *testing.T, s *specs.Spec) {
			eq(t, "cgroupsPath", s.Linux.CgroupsPath, "/isol8/sb-1")
		}},
		{"nofile", []Opt{WithRlimitNofile(4096)}, func(t *testing.T, s *specs.Spec) {
			if !slices.Equal(s.Process.Rlimits, []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 4096, Soft: 4096}}) {
				t.Errorf("rlimits = %+v", s.Process.Rlimits)
			}
		}},
		{"nil opt skipped", []Opt{nil, WithPids(3)}, func(t *testing.T, s *specs.Spec) {
			eq(t, "pids", *s.Linux.Resources.Pids.Limit, 3)
		}},
		{"options leave the rest of the baseline alone", []Opt{WithMemory(1 << 30), WithNetwork("none", "")}, func(t *testing.T, s *specs.Spec) {
			base, _ := New()
			eq(t, "noNewPrivileges", s.Process.NoNewPrivileges, true)
			eq(t, "mounts", len(s.Mounts), len(base.Mounts))
			eq(t, "caps", strings.Join(s.Process.Capabilities.Bounding, ","), strings.Join(base.Process.Capabilities.Bounding, ","))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.opts...)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			tc.check(t, s)
		})
	}
}

func TestOptErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opt     Opt
		wantErr string // exact text when set
	}{
		{"init relative", WithInit("isol8-init"), ""},
		{"init empty", WithInit(""), ""},
		{"memory zero", WithMemory(0), ""},
		{"memory negative", WithMemory(-1), ""},
		{"cpu zero", WithCPU(0), ""},
		{"cpu negative", WithCPU(-1), ""},
		{"cpu below 1ms quota", WithCPU(0.001), ""},
		{"cpu NaN", WithCPU(math.NaN()), ""},
		{"cpu Inf", WithCPU(math.Inf(1)), ""},
		{"cpu huge", WithCPU(1e300), ""},
		{"pids zero", WithPids(0), ""},
		{"pids negative", WithPids(-5), ""},
		{"sandbox size zero", WithSandboxTmpfs(0), ""},
		{"sandbox size negative", WithSandboxTmpfs(-1), ""},
		{"tmp size zero", WithTmpTmpfs(0), ""},
		{"unknown network mode", WithNetwork("bridge", ""), `Unknown network mode: "bridge". Expected none, host or filtered`},
		{"empty network mode", WithNetwork("", ""), `Unknown network mode: "". Expected none, host or filtered`},
		{"filtered without path", WithNetwork("filtered", ""), ""},
		{"filtered relative path", WithNetwork("filtered", "netns/x"), ""},
		{"none with path", WithNetwork("none", "/run/netns/x"), ""},
		{"env without =", WithEnv([]string{"FOO"}), ""},
		{"env empty key", WithEnv([]string{"=x"}), ""},
		{"env NUL", WithEnv([]string{"A=b\x00c"}), ""},
		{"hostname empty", WithHostname(""), ""},
		{"hostname too long", WithHostname(strings.Repeat("a", 65)), ""},
		{"hostname bad char", WithHostname("a_b"), ""},
		{"hostname leading dash", WithHostname("-a"), ""},
		{"cgroups path empty", WithCgroupsPath(""), ""},
		{"cgroups path dotdot", WithCgroupsPath("/isol8/../../x"), ""},
		{"nofile zero", WithRlimitNofile(0), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.opt)
			if err == nil {
				t.Fatalf("New = %+v, want error", s)
			}
			if s != nil {
				t.Error("spec returned with an error")
			}
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("errdefs.IsInvalidArgument(%v) = false", err)
			}
			if tc.wantErr != "" && err.Error() != tc.wantErr {
				t.Errorf("err = %q, want %q", err, tc.wantErr)
			}
		})
	}
}

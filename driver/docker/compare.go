package docker

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Difference is one security-relevant field where the runtime spec Docker
// handed to runc differs from the spec the engine wrote.
type Difference struct {
	// Field names the field ("linux.namespaces.user", "mount /.isol8-init"),
	// the same string docs/security.md lists for a known difference.
	Field string
	Want  string // the engine's
	Got   string // Docker's
}

func (d Difference) String() string {
	return fmt.Sprintf("%s: engine %s, docker %s", d.Field, d.Want, d.Got)
}

// SpecDifferences compares every security-relevant field of the engine's
// spec (want) with Docker's bundle spec (got): process identity, arguments,
// capabilities, no_new_privs, rlimits, AppArmor, the root, hostname,
// namespaces and id mappings, seccomp, masked and read-only paths, sysctls,
// cgroup limits, device rules and every mount.
func SpecDifferences(want, got *specs.Spec) []Difference {
	var out []Difference
	add := func(field string, w, g any) {
		ws, gs := show(w), show(g)
		if ws != gs {
			out = append(out, Difference{Field: field, Want: ws, Got: gs})
		}
	}
	wp, gp := want.Process, got.Process
	add("process.user", user(wp.User), user(gp.User))
	add("process.args", wp.Args, gp.Args)
	add("process.noNewPrivileges", wp.NoNewPrivileges, gp.NoNewPrivileges)
	wc, gc := capsOf(wp), capsOf(gp)
	add("process.capabilities.bounding", sorted(wc.Bounding), sorted(gc.Bounding))
	add("process.capabilities.effective", sorted(wc.Effective), sorted(gc.Effective))
	add("process.capabilities.permitted", sorted(wc.Permitted), sorted(gc.Permitted))
	add("process.capabilities.inheritable", sorted(wc.Inheritable), sorted(gc.Inheritable))
	add("process.capabilities.ambient", sorted(wc.Ambient), sorted(gc.Ambient))
	add("process.rlimits", rlimits(wp.Rlimits), rlimits(gp.Rlimits))
	add("process.apparmorProfile", wp.ApparmorProfile, gp.ApparmorProfile)
	add("process.selinuxLabel", wp.SelinuxLabel, gp.SelinuxLabel)
	add("root.readonly", want.Root.Readonly, got.Root.Readonly)
	add("hostname", want.Hostname, got.Hostname)
	wl, gl := want.Linux, got.Linux
	for _, t := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.IPCNamespace, specs.UTSNamespace,
		specs.MountNamespace, specs.NetworkNamespace, specs.UserNamespace, specs.CgroupNamespace, specs.TimeNamespace} {
		add("linux.namespaces."+string(t), namespace(wl, t), namespace(gl, t))
	}
	add("linux.uidMappings", wl.UIDMappings, gl.UIDMappings)
	add("linux.gidMappings", wl.GIDMappings, gl.GIDMappings)
	add("linux.seccomp", seccompOf(wl.Seccomp), seccompOf(gl.Seccomp))
	add("linux.maskedPaths", sorted(wl.MaskedPaths), sorted(gl.MaskedPaths))
	add("linux.readonlyPaths", sorted(wl.ReadonlyPaths), sorted(gl.ReadonlyPaths))
	add("linux.sysctl", wl.Sysctl, sysctls(wl.Sysctl, gl.Sysctl))
	wr, gr := resourcesOf(wl), resourcesOf(gl)
	add("linux.resources.memory", memoryOf(wr.Memory), memoryOf(gr.Memory))
	add("linux.resources.cpu", cpuLimit(wr.CPU), cpuLimit(gr.CPU))
	add("linux.resources.pids", wr.Pids, gr.Pids)
	add("linux.resources.devices", wr.Devices, gr.Devices)
	add("linux.devices", wl.Devices, gl.Devices)
	out = append(out, mountDifferences(want.Mounts, got.Mounts)...)
	return out
}

func show(v any) string {
	if v == nil || (reflect.ValueOf(v).Kind() == reflect.Pointer && reflect.ValueOf(v).IsNil()) {
		return "none"
	}
	if s, ok := v.([]string); ok && len(s) == 0 {
		return "none"
	}
	if m, ok := v.(map[string]string); ok && len(m) == 0 {
		return "none"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if string(b) == "null" || string(b) == "[]" || string(b) == `""` {
		return "none"
	}
	return string(b)
}

func capsOf(p *specs.Process) specs.LinuxCapabilities {
	if p.Capabilities == nil {
		return specs.LinuxCapabilities{}
	}
	return *p.Capabilities
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func rlimits(r []specs.POSIXRlimit) []specs.POSIXRlimit {
	r = slices.Clone(r)
	slices.SortFunc(r, func(a, b specs.POSIXRlimit) int { return strings.Compare(a.Type, b.Type) })
	return r
}

// namespace describes the namespace of type t: absent, fresh or a path.
func namespace(l *specs.Linux, t specs.LinuxNamespaceType) string {
	for _, ns := range l.Namespaces {
		if ns.Type == t {
			if ns.Path != "" {
				return "join " + ns.Path
			}
			return "new"
		}
	}
	return "none"
}

func resourcesOf(l *specs.Linux) specs.LinuxResources {
	if l.Resources == nil {
		return specs.LinuxResources{}
	}
	return *l.Resources
}

// cpuLimit is the CFS quota and period only: shares and cpusets are not
// limits the engine sets.
func cpuLimit(c *specs.LinuxCPU) string {
	if c == nil || c.Quota == nil || c.Period == nil {
		return "none"
	}
	return fmt.Sprintf("%d/%d", *c.Quota, *c.Period)
}

// mountDifferences compares mounts by destination: type, source for bind
// mounts, and options as a set (propagation and bind/rbind are how a runtime
// spells the same bind); a mount only one side has is a difference too.
func mountDifferences(want, got []specs.Mount) []Difference {
	var out []Difference
	gotBy := map[string]specs.Mount{}
	for _, m := range got {
		gotBy[m.Destination] = m
	}
	seen := map[string]bool{}
	for _, w := range want {
		seen[w.Destination] = true
		g, ok := gotBy[w.Destination]
		field := "mount " + w.Destination
		if !ok {
			out = append(out, Difference{Field: field, Want: describeMount(w), Got: "none"})
			continue
		}
		if describeMount(w) != describeMount(g) {
			out = append(out, Difference{Field: field, Want: describeMount(w), Got: describeMount(g)})
		}
	}
	for _, g := range got {
		if !seen[g.Destination] {
			out = append(out, Difference{Field: "mount " + g.Destination, Want: "none", Got: describeMount(g)})
		}
	}
	return out
}

func describeMount(m specs.Mount) string {
	var opts []string
	bind := m.Type == "bind"
	for _, o := range m.Options {
		switch o {
		case "rprivate", "private", "rslave", "slave", "rshared", "shared":
			continue
		case "bind", "rbind":
			bind = true
			continue
		case "relatime":
			continue // the kernel's default atime mode
		}
		opts = append(opts, normalizeSize(o))
	}
	slices.Sort(opts)
	if bind {
		return fmt.Sprintf("bind %s [%s]", m.Source, strings.Join(opts, ","))
	}
	return fmt.Sprintf("%s [%s]", m.Type, strings.Join(opts, ","))
}

// normalizeSize writes a size= option in bytes ("65536k" and "67108864"
// are one size).
func normalizeSize(o string) string {
	if !strings.HasPrefix(o, "size=") {
		return o
	}
	n, err := sizeOption([]string{o})
	if err != nil {
		return o
	}
	return fmt.Sprintf("size=%d", n)
}

// user drops supplementary groups that only repeat the primary group
// (Docker lists it).
func user(u specs.User) specs.User {
	u.AdditionalGids = slices.DeleteFunc(slices.Clone(u.AdditionalGids), func(g uint32) bool { return g == u.GID })
	if len(u.AdditionalGids) == 0 {
		u.AdditionalGids = nil
	}
	return u
}

// eperm is the errno runc returns for an ERRNO action without errnoRet.
const eperm = 1

// seccompOf spells an ERRNO action without an errno as EPERM, which is what
// runc does with it (Docker 20.10 drops defaultErrnoRet, so an explicit
// EPERM default arrives as none).
func seccompOf(p *specs.LinuxSeccomp) *specs.LinuxSeccomp {
	if p == nil {
		return nil
	}
	cp := *p
	fill := func(action specs.LinuxSeccompAction, ret *uint) *uint {
		if ret == nil && action == specs.ActErrno {
			v := uint(eperm)
			return &v
		}
		return ret
	}
	cp.DefaultErrnoRet = fill(cp.DefaultAction, cp.DefaultErrnoRet)
	cp.Syscalls = slices.Clone(p.Syscalls)
	for i := range cp.Syscalls {
		cp.Syscalls[i].ErrnoRet = fill(cp.Syscalls[i].Action, cp.Syscalls[i].ErrnoRet)
	}
	return &cp
}

// netnsSysctlDefaults are the values a fresh network namespace starts with;
// the driver states them because Docker would otherwise loosen them.
var netnsSysctlDefaults = map[string]string{
	"net.ipv4.ip_unprivileged_port_start": "1024",
	"net.ipv4.ping_group_range":           "1 0",
}

// sysctls drops from got the entries the engine's spec leaves out that only
// restate a fresh namespace's defaults.
func sysctls(want, got map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range got {
		if _, ok := want[k]; !ok && netnsSysctlDefaults[k] == v {
			continue
		}
		out[k] = v
	}
	return out
}

// memoryOf treats a false DisableOOMKiller as unset.
func memoryOf(m *specs.LinuxMemory) *specs.LinuxMemory {
	if m == nil {
		return nil
	}
	cp := *m
	if cp.DisableOOMKiller != nil && !*cp.DisableOOMKiller {
		cp.DisableOOMKiller = nil
	}
	return &cp
}

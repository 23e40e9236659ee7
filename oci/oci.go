// Package oci builds the runtime-spec *specs.Spec for an isol8 sandbox: the
// locked-down baseline (read-only root, tmpfs /sandbox and /tmp, six
// capabilities, no_new_privs, masked /proc and /sys paths, no host devices,
// cgroup limits) plus small options that each change one thing.
//
// It does no I/O (it names host paths, it never touches them), needs neither
// root nor Linux, and imports no driver: both drivers get the same spec.
// Seccomp profiles come from the seccomp package through WithSeccomp; New
// alone leaves seccomp unset, and the engine always sets it.
package oci

import (
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isol8/isol8/agent"
	"github.com/isol8/isol8/seccomp"
)

// Opt changes one thing in a spec. Opts validate their arguments and
// return an error (errdefs.IsInvalidArgument) for nonsense.
type Opt func(*specs.Spec) error

// Paths and identities fixed by the sandbox design.
const (
	// InitPath is where WithInit mounts the init agent in the container.
	InitPath = "/.isol8-init"
	// SandboxDir is the user's working directory, a tmpfs; SandboxUID and
	// SandboxGID own it and user code runs as them. Defined once, in the
	// agent protocol.
	SandboxDir = agent.SandboxDir
	SandboxUID = agent.SandboxUID
	SandboxGID = agent.SandboxGID
	// DefaultPath is the container's PATH.
	DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// DefaultHostname is the baseline hostname (never the host's).
	DefaultHostname = "sandbox"
)

// Baseline limits, replaced by the matching options.
const (
	DefaultMemory      int64   = 512 << 20
	DefaultCPU         float64 = 1
	DefaultPids        int64   = 64
	DefaultSandboxSize int64   = 512 << 20
	DefaultTmpSize     int64   = 256 << 20
	DefaultNofile      uint64  = 1024

	cpuPeriod = 100000 // CFS period in µs
)

// Network modes for WithNetwork.
const (
	NetworkNone     = "none"
	NetworkHost     = "host"
	NetworkFiltered = "filtered"
)

var maskedPaths = [...]string{
	"/proc/acpi",
	"/proc/asound",
	"/proc/kcore",
	"/proc/keys",
	"/proc/latency_stats",
	"/proc/timer_list",
	"/proc/timer_stats",
	"/proc/sched_debug",
	"/proc/scsi",
	"/sys/firmware",
	"/sys/devices/virtual/powercap",
	"/sys/kernel",
}

var readonlyPaths = [...]string{
	"/proc/bus",
	"/proc/fs",
	"/proc/irq",
	"/proc/sys",
	"/proc/sysrq-trigger",
}

// hostNetworkFiles are bind-mounted read-only from the host in host mode.
var hostNetworkFiles = [...]string{"/etc/resolv.conf", "/etc/hosts"}

// New returns the locked-down baseline with opts applied in order (nil opts
// are skipped). The baseline has no process args (WithInit sets them) and no
// seccomp profile (WithSeccomp; nil means unconfined).
func New(opts ...Opt) (*specs.Spec, error) {
	s := baseline()
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func baseline() *specs.Spec {
	nofile := DefaultNofile
	return &specs.Spec{
		Version:  specs.Version,
		Root:     &specs.Root{Path: "rootfs", Readonly: true},
		Hostname: DefaultHostname,
		Process: &specs.Process{
			Terminal:        false,
			User:            specs.User{UID: 0, GID: 0},
			Cwd:             "/",
			Env:             []string{"PATH=" + DefaultPath},
			NoNewPrivileges: true,
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  caps(),
				Effective: caps(),
				Permitted: caps(),
			},
			Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: nofile, Soft: nofile}},
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			// The agent reads memory.oom_control / memory.events here to
			// report OOM kills.
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
			sandboxMount(DefaultSandboxSize),
			tmpMount(DefaultTmpSize),
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace},
				{Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace},
				{Type: specs.MountNamespace},
				{Type: specs.NetworkNamespace},
			},
			Resources: &specs.LinuxResources{
				Devices: defaultDeviceRules(),
				Memory:  memory(DefaultMemory),
				CPU:     cpu(DefaultCPU),
				Pids:    &specs.LinuxPids{Limit: ptr(DefaultPids)},
			},
			MaskedPaths:   slices.Clone(maskedPaths[:]),
			ReadonlyPaths: slices.Clone(readonlyPaths[:]),
			Sysctl:        baselineSysctls(),
		},
	}
}

// caps are the capabilities the container's pid 1 (the init agent, uid 0)
// holds: the set the seccomp profile is flattened for, defined once in
// package seccomp. User code, run by the agent as uid 100 under
// no_new_privs, holds none.
func caps() []string { return seccomp.Capabilities() }

// baselineSysctls are namespaced kernel settings of every sandbox.
// kernel.shm_rmid_forced destroys a SysV shared memory segment as soon as no
// process has it attached (its creator included), so a segment cannot
// outlive the execution that made it and hold memory or data for the next.
func baselineSysctls() map[string]string {
	return map[string]string{"kernel.shm_rmid_forced": "1"}
}

func ptr[T any](v T) *T { return &v }

// defaultDeviceRules denies every device, then allows the standard set
// runc creates (null, zero, full, random, urandom, tty) plus ptmx and pts,
// as containerd's default spec does. No host device is added.
func defaultDeviceRules() []specs.LinuxDeviceCgroup {
	char := func(major int64, minor *int64) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: ptr(major), Minor: minor, Access: "rwm"}
	}
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		char(1, ptr[int64](3)), // /dev/null
		char(1, ptr[int64](5)), // /dev/zero
		char(1, ptr[int64](7)), // /dev/full
		char(1, ptr[int64](8)), // /dev/random
		char(1, ptr[int64](9)), // /dev/urandom
		char(5, ptr[int64](0)), // /dev/tty
		char(5, ptr[int64](2)), // /dev/ptmx
		char(136, nil),         // /dev/pts/*
	}
}

func memory(bytes int64) *specs.LinuxMemory {
	// Swap is memory+swap on cgroup v1: equal to the limit means no swap.
	return &specs.LinuxMemory{Limit: ptr(bytes), Swap: ptr(bytes)}
}

func cpu(cores float64) *specs.LinuxCPU {
	return &specs.LinuxCPU{Quota: ptr(int64(math.Floor(cores * cpuPeriod))), Period: ptr[uint64](cpuPeriod)}
}

func sandboxMount(bytes int64) specs.Mount {
	return specs.Mount{Destination: SandboxDir, Type: "tmpfs", Source: "tmpfs", Options: []string{
		"rw", "exec", "nosuid", "nodev", "size=" + strconv.FormatInt(bytes, 10),
		"uid=" + strconv.Itoa(SandboxUID), "gid=" + strconv.Itoa(SandboxGID), "mode=0755",
	}}
}

func tmpMount(bytes int64) specs.Mount {
	return specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{
		"rw", "noexec", "nosuid", "nodev", "size=" + strconv.FormatInt(bytes, 10), "mode=1777",
	}}
}

// setMount replaces the mount at m.Destination, or appends m.
func setMount(s *specs.Spec, m specs.Mount) {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == m.Destination {
			s.Mounts[i] = m
			return
		}
	}
	s.Mounts = append(s.Mounts, m)
}

func removeMount(s *specs.Spec, dest string) {
	s.Mounts = slices.DeleteFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == dest })
}

// ensure makes sure the sections an option writes to exist, so options also
// work on a spec that did not come from New.
func ensure(s *specs.Spec) {
	if s.Process == nil {
		s.Process = &specs.Process{}
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	if s.Linux.Resources == nil {
		s.Linux.Resources = &specs.LinuxResources{}
	}
}

// WithInit bind-mounts the init agent binary at hostPath (absolute, on the
// engine's host) read-only at InitPath and makes it the process: args
// ["/.isol8-init"]. The mount keeps exec (it is the init) but not suid/dev.
func WithInit(hostPath string) Opt {
	return func(s *specs.Spec) error {
		if hostPath == "" || !path.IsAbs(hostPath) || strings.ContainsRune(hostPath, 0) {
			return invalid("init binary path must be absolute, got %q", hostPath)
		}
		ensure(s)
		setMount(s, specs.Mount{
			Destination: InitPath,
			Type:        "bind",
			Source:      path.Clean(hostPath),
			Options:     []string{"bind", "ro", "nosuid", "nodev"},
		})
		s.Process.Args = []string{InitPath}
		return nil
	}
}

// WithMemory sets the memory limit in bytes, with memory+swap equal to it
// (no swap).
func WithMemory(bytes int64) Opt {
	return func(s *specs.Spec) error {
		if bytes <= 0 {
			return invalid("memory limit must be positive, got %d bytes", bytes)
		}
		ensure(s)
		s.Linux.Resources.Memory = memory(bytes)
		return nil
	}
}

// WithCPU sets a CFS quota of cores × the 100 ms period (floored to µs).
func WithCPU(cores float64) Opt {
	return func(s *specs.Spec) error {
		// Below 0.01 core the quota is under the kernel's 1 ms minimum.
		if !(cores >= 0.01) || math.IsInf(cores, 0) || cores > math.MaxInt64/cpuPeriod {
			return invalid("cpu limit must be a number of cores >= 0.01, got %v", cores)
		}
		ensure(s)
		s.Linux.Resources.CPU = cpu(cores)
		return nil
	}
}

// WithPids limits the number of tasks (processes and threads) in the
// sandbox, the agent included.
func WithPids(n int64) Opt {
	return func(s *specs.Spec) error {
		if n < 1 {
			return invalid("pids limit must be at least 1, got %d", n)
		}
		ensure(s)
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: ptr(n)}
		return nil
	}
}

// WithSandboxTmpfs sets the size in bytes of the /sandbox tmpfs
// (rw,exec,nosuid,nodev,uid=100,gid=101,mode=0755).
func WithSandboxTmpfs(bytes int64) Opt {
	return func(s *specs.Spec) error {
		if bytes <= 0 {
			return invalid("sandbox tmpfs size must be positive, got %d bytes", bytes)
		}
		setMount(s, sandboxMount(bytes))
		return nil
	}
}

// WithTmpTmpfs sets the size in bytes of the /tmp tmpfs
// (rw,noexec,nosuid,nodev,mode=1777).
func WithTmpTmpfs(bytes int64) Opt {
	return func(s *specs.Spec) error {
		if bytes <= 0 {
			return invalid("tmp tmpfs size must be positive, got %d bytes", bytes)
		}
		setMount(s, tmpMount(bytes))
		return nil
	}
}

// WithReadonlyRoot sets whether the root filesystem is read-only (the
// baseline's default is true).
func WithReadonlyRoot(ro bool) Opt {
	return func(s *specs.Spec) error {
		if s.Root == nil {
			s.Root = &specs.Root{Path: "rootfs"}
		}
		s.Root.Readonly = ro
		return nil
	}
}

// WithNetwork sets the network mode:
//   - "none": a new, empty network namespace (the runtime brings up lo only);
//   - "host": no network namespace (the host's) and the host's
//     /etc/resolv.conf and /etc/hosts bind-mounted read-only;
//   - "filtered": join the existing namespace at nsPath (the engine made it
//     and serves the proxy inside it). With WithUserNamespace joining a
//     namespace by path, nsPath must be owned by that user namespace: the
//     runtime joins it from inside (runc 1.1 enters the user namespace
//     first), and only the owner may mount the sandbox's sysfs.
//
// A driver told to make a fresh namespace and report its path
// (driver.FreshNetwork) takes "none": a new namespace, by no path.
//
// nsPath must be empty for none and host. Applying it again replaces the
// earlier mode.
func WithNetwork(mode string, nsPath string) Opt {
	return func(s *specs.Spec) error {
		switch mode {
		case NetworkNone, NetworkHost:
			if nsPath != "" {
				return invalid("network mode %q takes no namespace path, got %q", mode, nsPath)
			}
		case NetworkFiltered:
			if nsPath == "" || !path.IsAbs(nsPath) || strings.ContainsRune(nsPath, 0) {
				return invalid("filtered network mode needs the absolute path of a network namespace, got %q", nsPath)
			}
		default:
			return invalid("Unknown network mode: %q. Expected none, host or filtered", mode)
		}
		ensure(s)
		s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool {
			return n.Type == specs.NetworkNamespace
		})
		for _, f := range hostNetworkFiles {
			removeMount(s, f)
		}
		switch mode {
		case NetworkNone:
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace})
		case NetworkFiltered:
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: path.Clean(nsPath)})
		case NetworkHost:
			for _, f := range hostNetworkFiles {
				s.Mounts = append(s.Mounts, specs.Mount{
					Destination: f, Type: "bind", Source: f,
					Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"},
				})
			}
		}
		return nil
	}
}

// WithSeccomp sets the seccomp profile (from the seccomp package); nil
// means unconfined. The profile is copied, so callers may reuse it.
func WithSeccomp(p *specs.LinuxSeccomp) Opt {
	return func(s *specs.Spec) error {
		ensure(s)
		s.Linux.Seccomp = copySeccomp(p)
		return nil
	}
}

func copySeccomp(p *specs.LinuxSeccomp) *specs.LinuxSeccomp {
	if p == nil {
		return nil
	}
	c := *p
	c.Architectures = slices.Clone(p.Architectures)
	c.Flags = slices.Clone(p.Flags)
	if p.DefaultErrnoRet != nil {
		c.DefaultErrnoRet = ptr(*p.DefaultErrnoRet)
	}
	c.Syscalls = make([]specs.LinuxSyscall, len(p.Syscalls))
	for i, sc := range p.Syscalls {
		sc.Names = slices.Clone(sc.Names)
		sc.Args = slices.Clone(sc.Args)
		if sc.ErrnoRet != nil {
			sc.ErrnoRet = ptr(*sc.ErrnoRet)
		}
		c.Syscalls[i] = sc
	}
	if p.Syscalls == nil {
		c.Syscalls = nil
	}
	return &c
}

// WithEnv sets environment variables ("KEY=value") of the container's
// process, replacing earlier values of the same key (PATH included) and
// keeping the rest.
func WithEnv(env []string) Opt {
	return func(s *specs.Spec) error {
		for _, kv := range env {
			k, _, ok := strings.Cut(kv, "=")
			if !ok || k == "" || strings.ContainsRune(kv, 0) {
				return invalid("environment entry must be KEY=value, got %q", kv)
			}
		}
		ensure(s)
		for _, kv := range env {
			k, _, _ := strings.Cut(kv, "=")
			s.Process.Env = slices.DeleteFunc(s.Process.Env, func(e string) bool {
				ek, _, _ := strings.Cut(e, "=")
				return ek == k
			})
			s.Process.Env = append(s.Process.Env, kv)
		}
		return nil
	}
}

// WithHostname sets the hostname inside the sandbox's UTS namespace (an
// RFC 1123 name of at most 64 characters).
func WithHostname(h string) Opt {
	return func(s *specs.Spec) error {
		if !validHostname(h) {
			return invalid("hostname must be 1-64 characters of letters, digits, '-' and '.', got %q", h)
		}
		s.Hostname = h
		return nil
	}
}

func validHostname(h string) bool {
	if h == "" || len(h) > 64 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// WithCgroupsPath sets the container's cgroup path, e.g.
// "/isol8/<sandbox id>" (or a systemd "slice:prefix:name").
func WithCgroupsPath(p string) Opt {
	return func(s *specs.Spec) error {
		if p == "" || strings.ContainsRune(p, 0) || slices.Contains(strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == ':' }), "..") {
			return invalid("cgroups path must be non-empty and free of '..', got %q", p)
		}
		ensure(s)
		s.Linux.CgroupsPath = p
		return nil
	}
}

// WithRlimitNofile sets the soft and hard RLIMIT_NOFILE.
func WithRlimitNofile(n uint64) Opt {
	return func(s *specs.Spec) error {
		if n < 1 {
			return invalid("RLIMIT_NOFILE must be at least 1, got %d", n)
		}
		ensure(s)
		s.Process.Rlimits = slices.DeleteFunc(s.Process.Rlimits, func(r specs.POSIXRlimit) bool {
			return r.Type == "RLIMIT_NOFILE"
		})
		s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Hard: n, Soft: n})
		return nil
	}
}

// invalidArgError is an errdefs.IsInvalidArgument error whose text is
// exactly the message (some texts are part of isol8's surface).
type invalidArgError struct{ msg string }

func (e invalidArgError) Error() string   { return e.msg }
func (invalidArgError) InvalidParameter() {}

func invalid(format string, args ...any) error {
	return invalidArgError{fmt.Sprintf(format, args...)}
}

package docker

import (
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/driver"
)

// Mounts Docker makes itself in every container, with the same type and
// options as the engine's spec (compared by the bundle test); the engine's
// entries for them are not projected. /dev/shm is sized through ShmSize.
var dockerMounts = map[string]bool{
	"/proc": true, "/dev": true, "/dev/pts": true, "/dev/shm": true,
	"/dev/mqueue": true, "/sys": true, "/sys/fs/cgroup": true,
}

// project turns the engine's runtime spec into a Docker container create
// call. Everything the spec says that Docker can express is carried over;
// what it cannot (a per-sandbox user namespace, the device cgroup list, the
// init mount's nosuid/nodev) is left to Docker's defaults, which
// docs/security.md lists and the bundle test checks.
func project(req driver.CreateRequest) (client.ContainerCreateOptions, error) {
	spec := req.Spec
	if spec == nil || spec.Process == nil || spec.Linux == nil || spec.Root == nil {
		return client.ContainerCreateOptions{}, api.InvalidArgumentf("create %s: incomplete spec", req.ID)
	}
	if spec.Process.Terminal {
		return client.ContainerCreateOptions{}, api.InvalidArgumentf("create %s: a terminal is not supported", req.ID)
	}
	netMode, err := networkMode(req)
	if err != nil {
		return client.ContainerCreateOptions{}, err
	}
	cfg := &container.Config{
		Hostname:     spec.Hostname,
		User:         fmt.Sprintf("%d:%d", spec.Process.User.UID, spec.Process.User.GID),
		AttachStdin:  true,
		AttachStdout: true,
		AttachStderr: true,
		OpenStdin:    true,
		StdinOnce:    true,
		Env:          slices.Clone(spec.Process.Env),
		Entrypoint:   slices.Clone(spec.Process.Args),
		Cmd:          []string{},
		WorkingDir:   spec.Process.Cwd,
		Labels:       maps.Clone(req.Labels),
	}
	noInit := false
	hc := &container.HostConfig{
		LogConfig:      container.LogConfig{Type: "none"},
		NetworkMode:    netMode,
		RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyDisabled},
		CapDrop:        []string{"ALL"},
		CapAdd:         capAdd(spec.Process.Capabilities),
		CgroupnsMode:   cgroupnsMode(spec),
		IpcMode:        container.IPCModePrivate,
		OomScoreAdj:    oomScoreAdj(spec),
		ReadonlyRootfs: spec.Root.Readonly,
		Sysctls:        projectSysctls(spec, netMode),
		Tmpfs:          map[string]string{},
		MaskedPaths:    nonNil(spec.Linux.MaskedPaths),
		ReadonlyPaths:  nonNil(spec.Linux.ReadonlyPaths),
		Init:           &noInit,
		Resources:      resources(spec),
	}
	if !spec.Root.Readonly {
		// A writable root must not grow without bound on the daemon's disk:
		// Docker bounds it only with a storage quota (overlay2 on xfs with
		// pquota) and refuses the option elsewhere, which Create reports.
		hc.StorageOpt = map[string]string{"size": strconv.FormatInt(writableRootSize(spec), 10)}
	}
	if spec.Process.NoNewPrivileges {
		hc.SecurityOpt = append(hc.SecurityOpt, "no-new-privileges")
	}
	sec, err := seccompOpt(spec.Linux.Seccomp)
	if err != nil {
		return client.ContainerCreateOptions{}, fmt.Errorf("create %s: %w", req.ID, err)
	}
	hc.SecurityOpt = append(hc.SecurityOpt, sec)
	if err := projectMounts(spec, hc); err != nil {
		return client.ContainerCreateOptions{}, fmt.Errorf("create %s: %w", req.ID, err)
	}
	return client.ContainerCreateOptions{
		Name:             req.ID,
		Image:            req.Image,
		Config:           cfg,
		HostConfig:       hc,
		NetworkingConfig: &network.NetworkingConfig{},
	}, nil
}

// writableRootSize bounds a writable root like the containerd driver's
// tmpfs upper layer: the memory limit less a reserve, 512 MiB without one.
func writableRootSize(spec *specs.Spec) int64 {
	if r := spec.Linux.Resources; r != nil && r.Memory != nil && r.Memory.Limit != nil && *r.Memory.Limit > 0 {
		limit := *r.Memory.Limit
		reserve := min(max(limit/4, 8<<20), 64<<20)
		return max(limit-reserve, limit/2)
	}
	return 512 << 20
}

// projectSysctls are the spec's, plus, in a network namespace of its own, the
// kernel's defaults for the two settings Docker (20.10 and later) would
// otherwise loosen: binding ports below 1024 and ICMP sockets for every
// group.
func projectSysctls(spec *specs.Spec, mode container.NetworkMode) map[string]string {
	out := maps.Clone(spec.Linux.Sysctl)
	if out == nil {
		out = map[string]string{}
	}
	if mode.IsHost() {
		return out
	}
	for k, v := range netnsSysctlDefaults {
		if _, ok := out[k]; !ok {
			out[k] = v
		}
	}
	return out
}

// nonNil keeps an empty list empty: a nil list means Docker's defaults.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

// networkMode maps the spec's network namespace onto Docker's modes: none
// (a fresh namespace with only loopback) or host. Docker cannot run a
// container in a namespace given by path.
func networkMode(req driver.CreateRequest) (container.NetworkMode, error) {
	var ns *specs.LinuxNamespace
	for i := range req.Spec.Linux.Namespaces {
		if req.Spec.Linux.Namespaces[i].Type == specs.NetworkNamespace {
			ns = &req.Spec.Linux.Namespaces[i]
		}
	}
	switch {
	case req.Network.Mode == driver.NetworkJoin || (ns != nil && ns.Path != ""):
		return "", api.NotImplementedf("create %s: the docker driver cannot join a network namespace by path", req.ID)
	case ns == nil:
		return network.NetworkHost, nil
	}
	return network.NetworkNone, nil
}

// cgroupnsMode: a cgroup namespace in the spec is a private one.
func cgroupnsMode(spec *specs.Spec) container.CgroupnsMode {
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.CgroupNamespace {
			return container.CgroupnsModePrivate
		}
	}
	return container.CgroupnsModeHost
}

func oomScoreAdj(spec *specs.Spec) int {
	if spec.Process.OOMScoreAdj != nil {
		return *spec.Process.OOMScoreAdj
	}
	return 0
}

// capAdd is the spec's bounding set, added back after dropping ALL.
func capAdd(c *specs.LinuxCapabilities) []string {
	if c == nil {
		return nil
	}
	return slices.Clone(c.Bounding)
}

// resources carries the spec's cgroup limits: memory with memory+swap,
// the CFS quota as NanoCPUs (Docker uses the same 100 ms period), pids, and
// the rlimits as ulimits.
func resources(spec *specs.Spec) container.Resources {
	r := container.Resources{CgroupParent: CgroupParent}
	if lr := spec.Linux.Resources; lr != nil {
		if m := lr.Memory; m != nil {
			if m.Limit != nil {
				r.Memory = *m.Limit
			}
			if m.Swap != nil {
				r.MemorySwap = *m.Swap
			}
		}
		if c := lr.CPU; c != nil && c.Quota != nil && c.Period != nil && *c.Period > 0 && *c.Quota > 0 {
			r.NanoCPUs = *c.Quota * 1e9 / int64(*c.Period)
		}
		if p := lr.Pids; p != nil && p.Limit != nil {
			limit := *p.Limit
			r.PidsLimit = &limit
		}
	}
	for _, rl := range spec.Process.Rlimits {
		name := strings.ToLower(strings.TrimPrefix(rl.Type, "RLIMIT_"))
		r.Ulimits = append(r.Ulimits, &container.Ulimit{Name: name, Hard: int64(rl.Hard), Soft: int64(rl.Soft)})
	}
	return r
}

// projectMounts carries the spec's tmpfs and bind mounts; the standard
// kernel filesystems are Docker's own.
func projectMounts(spec *specs.Spec, hc *container.HostConfig) error {
	for _, m := range spec.Mounts {
		switch {
		case m.Destination == "/dev/shm":
			size, err := sizeOption(m.Options)
			if err != nil {
				return err
			}
			hc.ShmSize = size
		case dockerMounts[m.Destination]:
		case m.Type == "tmpfs":
			hc.Tmpfs[m.Destination] = strings.Join(m.Options, ",")
		case m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind"):
			if !path.IsAbs(m.Source) {
				return api.InvalidArgumentf("bind mount source %q must be absolute", m.Source)
			}
			hc.Mounts = append(hc.Mounts, mount.Mount{
				Type: mount.TypeBind, Source: m.Source, Target: m.Destination,
				ReadOnly:    slices.Contains(m.Options, "ro"),
				BindOptions: &mount.BindOptions{Propagation: mount.PropagationRPrivate},
			})
		default:
			return api.InvalidArgumentf("mount %s of type %q has no Docker equivalent", m.Destination, m.Type)
		}
	}
	return nil
}

// sizeOption reads a tmpfs size= option ("65536k", "1048576").
func sizeOption(opts []string) (int64, error) {
	for _, o := range opts {
		v, ok := strings.CutPrefix(o, "size=")
		if !ok {
			continue
		}
		mult := int64(1)
		switch {
		case strings.HasSuffix(v, "k"):
			mult, v = 1<<10, strings.TrimSuffix(v, "k")
		case strings.HasSuffix(v, "m"):
			mult, v = 1<<20, strings.TrimSuffix(v, "m")
		case strings.HasSuffix(v, "g"):
			mult, v = 1<<30, strings.TrimSuffix(v, "g")
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, api.InvalidArgumentf("tmpfs size %q: %v", o, err)
		}
		return n * mult, nil
	}
	return 0, nil
}

// dockerSeccomp is Docker's seccomp profile format, as far as a runtime
// spec's profile needs it: the names and fields are the spec's own.
type dockerSeccomp struct {
	DefaultAction   specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet *uint                    `json:"defaultErrnoRet,omitempty"`
	Architectures   []specs.Arch             `json:"architectures,omitempty"`
	Flags           []specs.LinuxSeccompFlag `json:"flags,omitempty"`
	Syscalls        []specs.LinuxSyscall     `json:"syscalls"`
}

// seccompOpt is the security option carrying the spec's seccomp profile as
// JSON; no profile is "unconfined".
func seccompOpt(p *specs.LinuxSeccomp) (string, error) {
	if p == nil {
		return "seccomp=unconfined", nil
	}
	if p.ListenerPath != "" {
		return "", api.InvalidArgumentf("a seccomp listener is not supported by the docker driver")
	}
	b, err := json.Marshal(dockerSeccomp{
		DefaultAction: p.DefaultAction, DefaultErrnoRet: p.DefaultErrnoRet,
		Architectures: p.Architectures, Flags: p.Flags, Syscalls: nonNilSyscalls(p.Syscalls),
	})
	if err != nil {
		return "", fmt.Errorf("seccomp profile: %w", err)
	}
	return "seccomp=" + string(b), nil
}

func nonNilSyscalls(s []specs.LinuxSyscall) []specs.LinuxSyscall {
	if s == nil {
		return []specs.LinuxSyscall{}
	}
	return s
}

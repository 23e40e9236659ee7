package oci

import (
	"path"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// WithUserNamespace runs the sandbox in a user namespace that maps container
// ids 0..size-1 onto host ids hostID..hostID+size-1, for uids and gids alike.
// nsPath, when set, is an existing namespace with exactly that mapping for
// the runtime to join (the mappings are still stated: runtimes use them to
// hand the sandbox's root its stdio); empty means the runtime creates one.
//
// sysfs can only be mounted by a user namespace that owns the network
// namespace, so with the host's network (no network namespace) /sys is a
// read-only recursive bind of the host's instead.
func WithUserNamespace(nsPath string, hostID, size uint32) Opt {
	return func(s *specs.Spec) error {
		if size == 0 || hostID == 0 || uint64(hostID)+uint64(size) > 1<<32-1 {
			return invalid("user namespace needs a non-root host id range, got %d+%d", hostID, size)
		}
		if nsPath != "" && (!path.IsAbs(nsPath) || strings.ContainsRune(nsPath, 0)) {
			return invalid("user namespace path must be absolute, got %q", nsPath)
		}
		ensure(s)
		s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool {
			return n.Type == specs.UserNamespace
		})
		ns := specs.LinuxNamespace{Type: specs.UserNamespace}
		if nsPath != "" {
			ns.Path = path.Clean(nsPath)
		}
		s.Linux.Namespaces = append(s.Linux.Namespaces, ns)
		m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: hostID, Size: size}}
		s.Linux.UIDMappings = m
		s.Linux.GIDMappings = slices.Clone(m)
		if !hasNamespace(s, specs.NetworkNamespace) {
			for i := range s.Mounts {
				if s.Mounts[i].Destination == "/sys" && s.Mounts[i].Type == "sysfs" {
					s.Mounts[i] = specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys",
						Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
				}
			}
		}
		return nil
	}
}

func hasNamespace(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	return slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == t })
}

// InitNofileEnv carries RLIMIT_NOFILE to the init agent, which applies it
// to itself (and so to everything it starts) before anything else.
const InitNofileEnv = "ISOL8_RLIMIT_NOFILE"

// WithNofileByInit moves the spec's RLIMIT_NOFILE to InitNofileEnv. The
// runtime sets rlimits from outside the container (prlimit on its init),
// which for a user namespace not owned by root needs CAP_SYS_RESOURCE, which
// root does not always hold (nested or restricted hosts); lowering one's own
// limit needs no privilege.
func WithNofileByInit() Opt {
	return func(s *specs.Spec) error {
		ensure(s)
		for _, r := range s.Process.Rlimits {
			if r.Type == "RLIMIT_NOFILE" {
				if err := WithEnv([]string{InitNofileEnv + "=" + strconv.FormatUint(r.Hard, 10)})(s); err != nil {
					return err
				}
			}
		}
		s.Process.Rlimits = slices.DeleteFunc(s.Process.Rlimits, func(r specs.POSIXRlimit) bool { return r.Type == "RLIMIT_NOFILE" })
		return nil
	}
}

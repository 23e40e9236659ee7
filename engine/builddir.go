package engine

import (
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isol8/isol8/agent"
)

// bindBuildDir makes dir the sandbox's /sandbox: a bind mount in place of
// the tmpfs, its top owned by the sandbox user as the host sees it (through
// the spec's user namespace mapping, when there is one).
func bindBuildDir(spec *specs.Spec, dir string) error {
	uid, ok := hostID(spec.Linux.UIDMappings, agent.SandboxUID)
	if !ok {
		return fmt.Errorf("build sandbox: uid %d is not mapped", agent.SandboxUID)
	}
	gid, ok := hostID(spec.Linux.GIDMappings, agent.SandboxGID)
	if !ok {
		return fmt.Errorf("build sandbox: gid %d is not mapped", agent.SandboxGID)
	}
	if err := os.Lchown(dir, int(uid), int(gid)); err != nil {
		return fmt.Errorf("build sandbox: %w", err)
	}
	m := specs.Mount{Destination: agent.SandboxDir, Type: "bind", Source: dir,
		Options: []string{"rbind", "rw", "nosuid", "nodev"}}
	for i := range spec.Mounts {
		if spec.Mounts[i].Destination == agent.SandboxDir {
			spec.Mounts[i] = m
			return nil
		}
	}
	spec.Mounts = append(spec.Mounts, m)
	return nil
}

// hostID maps a container id to the host through mappings; without any
// mapping (no user namespace) ids are the host's.
func hostID(mappings []specs.LinuxIDMapping, id uint32) (uint32, bool) {
	if len(mappings) == 0 {
		return id, true
	}
	for _, m := range mappings {
		if id >= m.ContainerID && id-m.ContainerID < m.Size {
			return m.HostID + id - m.ContainerID, true
		}
	}
	return 0, false
}

package engine

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/isol8/isol8/driver"
)

// cgroupRoot is where the host's cgroup filesystems are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// pidsCgroupDir returns the host directory of a sandbox's pids controller:
// the containerd driver puts every sandbox at cgroup path /isol8/<id>
// (cgroup v1: under the pids hierarchy; v2: the unified one).
func pidsCgroupDir(id string) string {
	return pidsCgroupDirOf(filepath.Join("/isol8", id))
}

// pidsCgroupDirOf is pidsCgroupDir for a sandbox at cgroup path cg.
func pidsCgroupDirOf(cg string) string {
	if _, err := os.Stat(filepath.Join(cgroupRoot, "pids")); err == nil {
		return filepath.Join(cgroupRoot, "pids", cg)
	}
	return filepath.Join(cgroupRoot, cg)
}

// cgroupPather is a driver sandbox that says where its cgroup is (Docker
// names it after its own container id, not the sandbox's).
type cgroupPather interface{ CgroupPath() string }

// sandboxCgroupDir is the pids cgroup directory of a driver's sandbox.
func sandboxCgroupDir(sb driver.Sandbox) string {
	if p, ok := sb.(cgroupPather); ok {
		return pidsCgroupDirOf(p.CgroupPath())
	}
	return pidsCgroupDir(sb.ID())
}

// fitPids sets a ready sandbox's pids limit to the user's limit plus the
// tasks its agent runs. The agent makes its threads before it reports ready
// and keeps them, and nothing else runs yet, so pids.current is exactly the
// agent's share and user code gets exactly pidsLimit. The Go runtime
// does not land on an exact thread count, hence a measurement rather than a
// constant. When the cgroup cannot be read (another cgroup layout), the
// limit stays at the creation value, which has room for the agent's start.
func (h *Host) fitPids(sb driver.Sandbox, pidsLimit int64) {
	id, dir := sb.ID(), sandboxCgroupDir(sb)
	cur, err := os.ReadFile(filepath.Join(dir, "pids.current"))
	if err != nil {
		h.log.Debug("pids limit not fitted", "sandbox", id, "error", err)
		return
	}
	agentTasks, err := strconv.ParseInt(strings.TrimSpace(string(cur)), 10, 64)
	if err != nil {
		h.log.Debug("pids limit not fitted", "sandbox", id, "error", err)
		return
	}
	limit := strconv.FormatInt(pidsLimit+agentTasks, 10)
	if err := os.WriteFile(filepath.Join(dir, "pids.max"), []byte(limit), 0); err != nil {
		h.log.Debug("pids limit not fitted", "sandbox", id, "error", err)
	}
}

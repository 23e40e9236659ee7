package engine

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	ctrd "github.com/isol8/isol8/driver/containerd"
)

// These tests look at sandboxes from the host: the host identity of a
// sandbox's processes is what the kernel charges per-user limits to and what
// a process that escapes the sandbox would be.

// holdCode marks the sandbox as ready (from inside, so the host can see it
// through /proc/<pid>/root) and then stays alive until cancelled.
const holdCode = "import time\nopen('/tmp/ready', 'w').close()\ntime.sleep(120)\n"

// liveSandboxIDs returns the ids of the engine's sandboxes not yet destroyed.
func liveSandboxIDs(e *Engine) []string {
	e.host.mu.Lock()
	defer e.host.mu.Unlock()
	var ids []string
	for id := range e.host.live {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// sandboxPids returns the host pids in a sandbox's cgroup (v2 or v1).
func sandboxPids(t *testing.T, id string) []int {
	t.Helper()
	for _, dir := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/memory"} {
		data, err := os.ReadFile(filepath.Join(dir, "isol8", id, "cgroup.procs"))
		if err != nil {
			continue
		}
		var pids []int
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return pids
	}
	t.Fatalf("no cgroup.procs found for sandbox %s", id)
	return nil
}

// hostIDs returns the real, effective, saved and filesystem uids and gids of
// a host process.
func hostIDs(pid int) (uids, gids []uint32, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		if k != "Uid" && k != "Gid" {
			continue
		}
		for _, s := range strings.Fields(v) {
			n, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return nil, nil, err
			}
			if k == "Uid" {
				uids = append(uids, uint32(n))
			} else {
				gids = append(gids, uint32(n))
			}
		}
	}
	return uids, gids, sc.Err()
}

func uniq(ids []uint32) []uint32 {
	s := slices.Clone(ids)
	slices.Sort(s)
	return slices.Compact(s)
}

// accountIDs returns the ids listed in an /etc/passwd-style file (third
// field).
func accountIDs(t *testing.T, path string) map[uint32]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[uint32]string{}
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 3 {
			continue
		}
		if n, err := strconv.ParseUint(f[2], 10, 32); err == nil {
			ids[uint32(n)] = f[0]
		}
	}
	return ids
}

// holdSandboxes starts n executions that stay alive, waits until each runs
// its program, and returns their sandbox ids. Cancelling ctx ends them; wait
// returns when they have.
func holdSandboxes(t *testing.T, e *Engine, n int, code string) (ids []string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = e.Execute(ctx, Request{Runtime: "python", Code: code, TimeoutMs: 120000})
		}()
	}
	stop = func() {
		cancel()
		wg.Wait()
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		ids = liveSandboxIDs(e)
		ready := 0
		for _, id := range ids {
			if sandboxReady(t, id) {
				ready++
			}
		}
		if ready == n {
			return ids, stop
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	t.Fatalf("sandboxes did not become ready: live %v", ids)
	return nil, nil
}

// sandboxReady reports whether a process of the sandbox sees /tmp/ready.
func sandboxReady(t *testing.T, id string) bool {
	for _, pid := range sandboxPids(t, id) {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d/root/tmp/ready", pid)); err == nil {
			return true
		}
	}
	return false
}

// TestSandboxHostIdentity: every process of a sandbox (agent and user code)
// runs as a host uid and gid that is not root and belongs to no host account,
// and two live sandboxes share no host uid.
func TestSandboxHostIdentity(t *testing.T) {
	e := newTestEngine(t, Options{PoolSize: noPool})
	mustHaveImage(t, e, "python")
	ids, stop := holdSandboxes(t, e, 2, holdCode)
	defer stop()
	users := accountIDs(t, "/etc/passwd")
	groups := accountIDs(t, "/etc/group")
	perSandbox := map[string]map[uint32]bool{}
	for _, id := range ids {
		perSandbox[id] = map[uint32]bool{}
		pids := sandboxPids(t, id)
		if len(pids) < 2 {
			t.Fatalf("sandbox %s: want the agent and the user program, got pids %v", id, pids)
		}
		for _, pid := range pids {
			uids, gids, err := hostIDs(pid)
			if err != nil {
				continue // exited meanwhile
			}
			for _, u := range uniq(uids) {
				if u == 0 {
					t.Errorf("sandbox %s pid %d runs as host root (uids %v)", id, pid, uids)
				} else if name, ok := users[u]; ok {
					t.Errorf("sandbox %s pid %d runs as host account %s (uid %d)", id, pid, name, u)
				}
				perSandbox[id][u] = true
			}
			for _, g := range uniq(gids) {
				if g == 0 {
					t.Errorf("sandbox %s pid %d runs as host group root (gids %v)", id, pid, gids)
				} else if name, ok := groups[g]; ok {
					t.Errorf("sandbox %s pid %d runs as host group %s (gid %d)", id, pid, name, g)
				}
			}
		}
	}
	for u := range perSandbox[ids[0]] {
		if perSandbox[ids[1]][u] {
			t.Errorf("sandboxes %s and %s share host uid %d", ids[0], ids[1], u)
		}
	}
}

// inotifyCode opens inotify instances until the kernel refuses, reports the
// count, then marks the sandbox ready and holds them.
const inotifyCode = `import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
fds = []
while len(fds) < 100000:
    fd = libc.inotify_init1(0)
    if fd < 0:
        print("stopped", os.strerror(ctypes.get_errno()), flush=True)
        break
    fds.append(fd)
open('/tmp/held', 'w').write(str(len(fds)))
open('/tmp/ready', 'w').close()
time.sleep(120)
`

// TestInotifyLimitDoesNotCrossSandboxes: a sandbox that exhausts its
// per-user inotify instances (fs.inotify.max_user_instances) does not make
// inotify_init1 fail in another sandbox.
func TestInotifyLimitDoesNotCrossSandboxes(t *testing.T) {
	limit, err := os.ReadFile("/proc/sys/fs/inotify/max_user_instances")
	if err != nil {
		t.Fatal(err)
	}
	maxInstances, _ := strconv.Atoi(strings.TrimSpace(string(limit)))
	e := newTestEngine(t, Options{PoolSize: noPool})
	mustHaveImage(t, e, "python")
	ids, stop := holdSandboxes(t, e, 1, inotifyCode)
	defer stop()
	held := 0
	for _, pid := range sandboxPids(t, ids[0]) {
		if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/root/tmp/held", pid)); err == nil {
			held, _ = strconv.Atoi(string(data))
			break
		}
	}
	// Instances the agent holds count too; the rest are the program's.
	if held < maxInstances-8 || held > maxInstances {
		t.Errorf("sandbox A held %d inotify instances, want about max_user_instances=%d", held, maxInstances)
	}
	res := run(t, e, Request{Runtime: "python", Code: `import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(0)
print("ok" if fd >= 0 else "inotify_init1: " + os.strerror(ctypes.get_errno()))
`})
	if res.ExitCode != 0 || res.Stdout != "ok" {
		t.Fatalf("sandbox B while A holds %d inotify instances: exit %d stdout %q stderr %q", held, res.ExitCode, res.Stdout, res.Stderr)
	}
}

// TestUserNamespaceInside: what user code sees in its user namespace, with
// no network and with the host's network (where /sys cannot be a fresh sysfs
// and is the host's, read-only): container ids 0..65535 map onto a range of
// at least 1000000, the baseline's RLIMIT_NOFILE still holds, the tmpfs
// mounts belong to the sandbox user, and a writable root takes writes only
// where the image allows everyone.
func TestUserNamespaceInside(t *testing.T) {
	for _, network := range []string{NetworkNone, NetworkHost} {
		t.Run(network, func(t *testing.T) {
			ro := network == NetworkNone
			e := newTestEngine(t, Options{PoolSize: noPool, Network: network, ReadonlyRootFs: &ro})
			mustHaveImage(t, e, "bash")
			res := run(t, e, Request{Runtime: "bash", Code: `set -e
read inner outer size < /proc/self/uid_map; echo "uid_map $inner $size $([ "$outer" -ge 1000000 ] && echo high)"
read inner outer size < /proc/self/gid_map; echo "gid_map $inner $size $([ "$outer" -ge 1000000 ] && echo high)"
echo "nofile $(ulimit -Sn) $(ulimit -Hn)"
echo "sandbox $(stat -c %u:%g /sandbox)"
echo x > /sandbox/f && echo "sandbox file $(stat -c %u:%g /sandbox/f)"
echo x > /dev/shm/f && echo "shm ok"
echo x > /tmp/f && echo "tmp ok"
if [ -w /var/tmp ]; then echo x > /var/tmp/f && echo "var tmp $(stat -c %u /var/tmp/f)"; fi
echo "sys $(cat /sys/kernel/mm/transparent_hugepage/enabled >/dev/null 2>&1 && echo readable || echo masked) $(ls /sys/class/net | grep -c .)"
`})
			want := []string{
				"uid_map 0 65536 high", "gid_map 0 65536 high", "nofile 1024 1024",
				"sandbox 100:101", "sandbox file 100:101", "shm ok", "tmp ok",
			}
			for _, w := range want {
				if !strings.Contains(res.Stdout+"\n", w+"\n") {
					t.Errorf("missing %q in\n%s\nstderr %s", w, res.Stdout, res.Stderr)
				}
			}
			if !ro && !strings.Contains(res.Stdout, "var tmp 100\n") {
				t.Errorf("writable root: no write to /var/tmp:\n%s", res.Stdout)
			}
			// /sys/kernel stays masked; only host networking sees the host's
			// interfaces.
			wantSys := "sys masked 1\n"
			if network == NetworkHost {
				wantSys = "sys masked "
			}
			if out := res.Stdout + "\n"; !strings.Contains(out, wantSys) || (network == NetworkHost && strings.Contains(out, "sys masked 1\n")) {
				t.Errorf("/sys view wrong for network %s:\n%s", network, res.Stdout)
			}
		})
	}
}

// TestIdentityReleasedWithSandbox: a sandbox's id range is recorded while it
// lives and free again once it is removed; with every range taken, a new
// sandbox is refused with a clear resource-exhausted error.
func TestIdentityReleasedWithSandbox(t *testing.T) {
	dir := t.TempDir()
	// A base of its own: no other engine on the host hands out these ids.
	e := newTestEngine(t, Options{PoolSize: noPool, UserNS: &UserNSOptions{Base: 3_000_000_000, Count: 1, StateDir: dir}})
	mustHaveImage(t, e, "python")
	for i := range 2 {
		res := run(t, e, Request{Runtime: "python", Code: "import os; print(open('/proc/self/uid_map').read().split()[1])"})
		if res.Stdout != "3000000000" {
			t.Fatalf("run %d: host id %q, want 3000000000 (stderr %q)", i, res.Stdout, res.Stderr)
		}
		if data, err := os.ReadFile(filepath.Join(dir, "slot-0")); err != nil || len(data) != 0 {
			t.Fatalf("run %d: slot after removal: %q, %v", i, data, err)
		}
	}
	ids, stop := holdSandboxes(t, e, 1, holdCode)
	defer stop()
	if data, _ := os.ReadFile(filepath.Join(dir, "slot-0")); !strings.Contains(string(data), "owner="+ids[0]) {
		t.Fatalf("slot of live sandbox %s records %q", ids[0], data)
	}
	_, err := e.Execute(t.Context(), Request{Runtime: "python", Code: "print(1)"})
	if !errdefs.IsResourceExhausted(err) || !strings.Contains(err.Error(), "user namespace ranges are in use") {
		t.Fatalf("second live sandbox: %v, want resource exhausted", err)
	}
}

// TestKeptSandboxKeepsItsRange: a sandbox that outlives its engine (kept
// with Persist, as after a crash) keeps its id range: no other engine gets
// it while the container lives, and it is reclaimed once the container is
// removed.
func TestKeptSandboxKeepsItsRange(t *testing.T) {
	ns := &UserNSOptions{Base: 3_100_000_000, Count: 1, StateDir: t.TempDir()}
	kept := newTestEngine(t, Options{PoolSize: noPool, Persist: true, UserNS: ns})
	mustHaveImage(t, kept, "bash")
	res := run(t, kept, Request{Runtime: "bash", Code: "echo kept"})
	id := res.ContainerID
	t.Cleanup(func() {
		// Removing a missing container is no error: this only acts when
		// the test failed before its own removal.
		ctx := context.Background()
		drv, err := ctrd.New(ctx, ctrd.Config{Address: kept.opts.Containerd.Address})
		if err != nil {
			t.Error(err)
			return
		}
		defer drv.Close()
		if err := drv.Remove(ctx, id); err != nil {
			t.Errorf("remove kept sandbox: %v", err)
		}
	})
	if err := kept.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}

	other := newTestEngine(t, Options{PoolSize: noPool, UserNS: ns})
	if _, err := other.Execute(t.Context(), Request{Runtime: "bash", Code: "echo hi"}); !errdefs.IsResourceExhausted(err) {
		t.Fatalf("while the kept sandbox lives: %v, want resource exhausted", err)
	}
	if err := other.host.drv.Remove(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	res = run(t, other, Request{Runtime: "bash", Code: "read a b c < /proc/self/uid_map; echo $b"})
	if res.Stdout != "3100000000" {
		t.Fatalf("after removal: host id %q (stderr %q), want the reclaimed 3100000000", res.Stdout, res.Stderr)
	}
}

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/isol8/isol8/agent"
	"golang.org/x/sys/unix"
)

// The reset is a checklist (agent.ResetItems): each item cleans one channel
// through which an execution could pass state to the next one in the same
// sandbox, then verifies the channel is clean. Every item runs and reports
// even when an earlier one failed, so the engine's log names all of them.

// reset makes a used sandbox fresh for the next execution and reports each
// item of the checklist.
func (a *agentState) reset(id uint32) {
	if !a.pid1 {
		a.fail(id, "", errors.New("reset needs the agent to be pid 1"))
		return
	}
	a.mu.Lock()
	busy := a.running != nil
	a.mu.Unlock()
	if busy {
		a.fail(id, "", errors.New("reset sandbox: an execution is still running"))
		return
	}
	rep := a.runChecklist()
	if err := a.out.WriteJSON(agent.TypeOK, id, rep); err != nil {
		log.Printf("send reset report: %v", err)
	}
}

func (a *agentState) runChecklist() agent.ResetReport {
	steps := []struct {
		name string
		fn   func() error
	}{
		{agent.ResetProcesses, a.killEverything},
		{agent.ResetFiles, wipeFiles},
		{agent.ResetSysVIPC, removeSysVIPC},
		{agent.ResetSockets, collectSockets},
		{agent.ResetDirAttrs, resetDirAttrs},
		{agent.ResetDev, checkDev},
	}
	var rep agent.ResetReport
	for _, s := range steps {
		start := time.Now()
		err := s.fn()
		item := agent.ResetItem{Name: s.name, OK: err == nil, Micros: time.Since(start).Microseconds()}
		if err != nil {
			item.Detail = err.Error()
		}
		rep.Items = append(rep.Items, item)
	}
	return rep
}

// killEverything kills every process but the agent and waits until they
// are gone (reaped by the reaper).
func (a *agentState) killEverything() error {
	deadline := time.Now().Add(2 * time.Second)
	for {
		a.killAll()
		left, err := otherProcesses()
		if err != nil {
			return err
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d processes survived SIGKILL", left)
		}
		time.Sleep(time.Millisecond)
	}
}

// wipeFiles empties the writable directories user code can reach.
func wipeFiles() error {
	for _, dir := range []string{agent.SandboxDir, agent.TmpDir, "/dev/shm", "/dev/mqueue"} {
		if err := emptyDir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		ents, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if len(ents) != 0 {
			return fmt.Errorf("%s not empty after the wipe (%s)", dir, ents[0].Name())
		}
	}
	return nil
}

// SysV IPC objects outlive their creators. They are removed as the uid
// that created them: the agent is neither their owner nor holds
// CAP_IPC_OWNER, and IPC_RMID needs one or the other.

// ipcObject is one SysV IPC object listed in /proc/sysvipc.
type ipcObject struct {
	kind string // "shm", "msg" or "sem"
	id   int
	cuid int
}

var ipcKinds = []struct {
	kind, idCol string
	rm          uintptr // the *ctl syscall
}{
	{"shm", "shmid", syscall.SYS_SHMCTL},
	{"msg", "msqid", syscall.SYS_MSGCTL},
	{"sem", "semid", syscall.SYS_SEMCTL},
}

const ipcRMID = 0

func removeSysVIPC() error {
	objs, err := listSysVIPC()
	if err != nil {
		return err
	}
	byUID := map[int][]ipcObject{}
	for _, o := range objs {
		byUID[o.cuid] = append(byUID[o.cuid], o)
	}
	for uid, list := range byUID {
		if err := asUID(uid, func() error { return removeIPC(list) }); err != nil {
			return err
		}
	}
	left, err := listSysVIPC()
	if err != nil {
		return err
	}
	if len(left) > 0 {
		return fmt.Errorf("%d SysV IPC objects left (first: %s id %d)", len(left), left[0].kind, left[0].id)
	}
	return nil
}

func removeIPC(list []ipcObject) error {
	for _, o := range list {
		for _, k := range ipcKinds {
			if k.kind != o.kind {
				continue
			}
			_, _, e := syscall.RawSyscall(k.rm, uintptr(o.id), ipcRMID, 0)
			if e != 0 && e != syscall.EINVAL && e != syscall.EIDRM { // already gone is fine
				return fmt.Errorf("remove %s id %d: %w", o.kind, o.id, e)
			}
		}
	}
	return nil
}

// asUID runs fn on a thread of its own whose effective uid is uid. Linux
// credentials are per thread; the thread is never handed back to the Go
// scheduler (the goroutine exits still locked to it, so it is destroyed),
// and the rest of the agent keeps uid 0.
func asUID(uid int, fn func() error) error {
	if uid == 0 {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Real and saved uids stay 0; only this thread's effective uid moves.
		keep := ^uintptr(0)
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, keep, uintptr(uid), keep); e != 0 {
			errc <- fmt.Errorf("switch to uid %d: %w", uid, e)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

func listSysVIPC() ([]ipcObject, error) {
	var out []ipcObject
	for _, k := range ipcKinds {
		b, err := os.ReadFile("/proc/sysvipc/" + k.kind)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		objs, err := parseSysVIPC(k.kind, k.idCol, b)
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	return out, nil
}

// parseSysVIPC reads one /proc/sysvipc file, locating columns by the
// header's names.
func parseSysVIPC(kind, idCol string, b []byte) ([]ipcObject, error) {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) == 0 {
		return nil, nil
	}
	head := strings.Fields(lines[0])
	idIdx, uidIdx := index(head, idCol), index(head, "cuid")
	if idIdx < 0 || uidIdx < 0 {
		return nil, fmt.Errorf("/proc/sysvipc/%s: unexpected header %q", kind, lines[0])
	}
	var out []ipcObject
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) <= max(idIdx, uidIdx) {
			continue
		}
		id, err1 := strconv.Atoi(f[idIdx])
		uid, err2 := strconv.Atoi(f[uidIdx])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("/proc/sysvipc/%s: bad line %q", kind, l)
		}
		out = append(out, ipcObject{kind: kind, id: id, cuid: uid})
	}
	return out, nil
}

func index(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// socketTables are the /proc/net files that list sockets of the sandbox's
// network namespace; missing ones (a protocol not built) are skipped.
var socketTables = []string{"tcp", "tcp6", "udp", "udp6", "udplite", "udplite6", "raw", "raw6", "icmp", "icmp6", "unix"}

// collectSockets makes sure no socket survived the sandbox's processes.
// Sockets whose file descriptors are in flight in a unix socket's queue
// (an SCM_RIGHTS cycle) outlive every process; only the kernel's unix
// garbage collector frees them. Releasing a unix socket while descriptors
// are in flight schedules it, and it runs asynchronously, so this triggers
// it and polls briefly. Anything still counted then (a TIME_WAIT
// connection, a socket the collector cannot free) fails the item.
//
// Verified against an in-flight cycle carrying a TCP listener and an
// abstract unix listener: without the trigger they survive every reset;
// with it (a plain release suffices while descriptors are in flight; the
// trigger also puts one in flight so it never depends on that) they are
// gone within the first poll.
func collectSockets() error {
	// The collector is one host-wide worker; on a busy host it can take a
	// while. Only a full socket can still be freed by it: TIME_WAIT entries
	// alone fail at once.
	deadline := time.Now().Add(time.Second)
	for {
		if err := triggerUnixGC(); err != nil {
			return err
		}
		left, collectable, err := socketsLeft()
		if err != nil {
			return err
		}
		if left == "" {
			return nil
		}
		if !collectable || time.Now().After(deadline) {
			return errors.New(left)
		}
		time.Sleep(time.Millisecond)
	}
}

// triggerUnixGC puts a descriptor in flight and releases both ends: the
// release of a unix socket with descriptors in flight schedules the
// collector.
func triggerUnixGC() error {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("trigger unix gc: %w", err)
	}
	rights := syscall.UnixRights(fds[0])
	err = syscall.Sendmsg(fds[0], []byte{0}, rights, nil, syscall.MSG_DONTWAIT)
	syscall.Close(fds[0])
	syscall.Close(fds[1])
	if err != nil {
		return fmt.Errorf("trigger unix gc: %w", err)
	}
	return nil
}

// socketsLeft describes the sockets still alive in the sandbox's network
// namespace, or "" when none. /proc/net/sockstat{,6} count them per
// namespace (every socket, unix ones and those in flight included, plus TCP
// TIME_WAIT entries) and cost microseconds; the per-protocol tables are read
// only when a count is not zero, to name what is left, because each read of
// tcp or tcp6 walks the host's whole TCP hash table (milliseconds); the
// unix table is read every time as a second opinion.
//
// collectable reports whether a full socket is left (one the unix garbage
// collector may still free), not only TIME_WAIT entries.
func socketsLeft() (left string, collectable bool, err error) {
	ensureEngineSockets()
	var found []string
	// The engine's own sockets (engineBaseline) are not left over: the
	// tcp tables name them, so they are read first when there are any.
	engineTW := 0
	if len(engineBaseline.listeners) > 0 {
		for _, t := range []string{"tcp", "tcp6"} {
			b, err := os.ReadFile("/proc/net/" + t)
			if err != nil {
				continue
			}
			_, tw := engineBaseline.countRows(t, b)
			engineTW += tw
		}
	}
	for _, f := range []string{"sockstat", "sockstat6"} {
		b, err := os.ReadFile("/proc/net/" + f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", false, err
		}
		nz := engineBaseline.excess(nonZeroSockstat(string(b)), engineTW)
		engineTW = 0 // sockstat6 has no tw counter; count them once
		for _, c := range nz {
			if !strings.Contains(c, " tw ") {
				collectable = true
			}
		}
		found = append(found, nz...)
	}
	tables := cheapSocketTables
	if len(found) > 0 {
		tables = socketTables
	}
	for _, t := range tables {
		b, err := os.ReadFile("/proc/net/" + t)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", false, err
		}
		if n, _ := engineBaseline.countRows(t, b); n > 0 {
			found = append(found, fmt.Sprintf("%s: %d", t, n))
			collectable = collectable || t != "tcp" && t != "tcp6"
		}
	}
	if len(found) == 0 {
		return "", false, nil
	}
	return "sockets left: " + strings.Join(found, ", "), collectable, nil
}

// cheapSocketTables are read on every reset besides the counters: unix
// sockets are what an SCM_RIGHTS cycle keeps alive, and their table lists
// only this namespace's sockets without walking a host-wide hash. (The
// counters already cover every protocol; the other tables cost 20-110 µs
// each and are read only to name what is left.)
var cheapSocketTables = []string{"unix"}

// nonZeroSockstat returns the per-namespace counters of a sockstat file
// that are not zero ("sockets used", every protocol's "inuse", TCP's "tw").
// "orphan", "alloc" and "mem" are host-wide and ignored.
func nonZeroSockstat(s string) []string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		proto, rest, ok := strings.Cut(line, ":")
		if !ok || strings.HasPrefix(proto, "FRAG") {
			continue
		}
		f := strings.Fields(rest)
		for i := 0; i+1 < len(f); i += 2 {
			if f[i] != "used" && f[i] != "inuse" && f[i] != "tw" {
				continue
			}
			if f[i+1] != "0" {
				out = append(out, fmt.Sprintf("%s %s %s", proto, f[i], f[i+1]))
			}
		}
	}
	return out
}

// freshDir is what a writable directory looks like in a new sandbox.
type freshDir struct {
	path     string
	uid, gid int
	mode     fs.FileMode // permission and sticky bits
}

var freshDirs = []freshDir{
	{agent.SandboxDir, agent.SandboxUID, agent.SandboxGID, 0o755},
	{agent.TmpDir, 0, 0, 0o777 | fs.ModeSticky},
	{"/dev/shm", 0, 0, 0o777 | fs.ModeSticky},
	{"/dev/mqueue", 0, 0, 0o777 | fs.ModeSticky},
}

// recordFreshDirs takes each directory's owner and mode as the agent finds
// them at start, before any user code ran, over the defaults above: in a
// user namespace /dev/mqueue belongs to an id the namespace does not map
// (it shows as 65534), which nobody inside can chown to or from.
func recordFreshDirs() {
	for i, d := range freshDirs {
		st, err := os.Lstat(d.path)
		if err != nil || !st.IsDir() {
			continue
		}
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			freshDirs[i].uid, freshDirs[i].gid = int(sys.Uid), int(sys.Gid)
			freshDirs[i].mode = st.Mode() & (fs.ModePerm | fs.ModeSticky | fs.ModeSetuid | fs.ModeSetgid)
		}
	}
}

// resetDirAttrs gives the writable directories back their fresh owner,
// mode and times and removes every extended attribute: user code owns
// /sandbox and could leave marks on the directory itself, which no wipe of
// its contents removes.
func resetDirAttrs() error {
	now := time.Now()
	for _, d := range freshDirs {
		if _, err := os.Lstat(d.path); errors.Is(err, fs.ErrNotExist) && d.path != agent.SandboxDir {
			continue
		}
		if err := clearXattrs(d.path); err != nil {
			return err
		}
		if err := chownIfChanged(d); err != nil {
			return err
		}
		if err := chmodIfChanged(d); err != nil {
			return err
		}
		// UTIME_NOW needs only write permission, not ownership.
		touch := []unix.Timespec{{Nsec: unix.UTIME_NOW}, {Nsec: unix.UTIME_NOW}}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, d.path, touch, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("touch %s: %w", d.path, err)
		}
		if err := verifyDir(d, now); err != nil {
			return err
		}
	}
	return nil
}

// chownIfChanged restores a directory's owner only when it differs: a
// directory owned by an unmapped id cannot be chowned, even to itself.
func chownIfChanged(d freshDir) error {
	st, err := os.Lstat(d.path)
	if err != nil {
		return err
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) == d.uid && int(sys.Gid) == d.gid {
		return nil
	}
	return os.Lchown(d.path, d.uid, d.gid)
}

// chmodIfChanged restores a directory's mode only when it differs.
func chmodIfChanged(d freshDir) error {
	st, err := os.Lstat(d.path)
	if err != nil {
		return err
	}
	if st.Mode()&(fs.ModePerm|fs.ModeSticky|fs.ModeSetuid|fs.ModeSetgid) == d.mode {
		return nil
	}
	return os.Chmod(d.path, d.mode)
}

func verifyDir(d freshDir, now time.Time) error {
	st, err := os.Lstat(d.path)
	if err != nil {
		return err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || !st.IsDir() {
		return fmt.Errorf("%s is not a directory", d.path)
	}
	if int(sys.Uid) != d.uid || int(sys.Gid) != d.gid {
		return fmt.Errorf("%s owned by %d:%d, want %d:%d", d.path, sys.Uid, sys.Gid, d.uid, d.gid)
	}
	if got := st.Mode() & (fs.ModePerm | fs.ModeSticky | fs.ModeSetuid | fs.ModeSetgid); got != d.mode {
		return fmt.Errorf("%s has mode %v, want %v", d.path, got, d.mode)
	}
	if st.ModTime().Before(now.Add(-time.Second)) {
		return fmt.Errorf("%s keeps an old modification time", d.path)
	}
	names, err := listXattrs(d.path)
	if err != nil {
		return err
	}
	if len(names) > 0 {
		return fmt.Errorf("%s keeps extended attributes %v", d.path, names)
	}
	return nil
}

func clearXattrs(p string) error {
	names, err := listXattrs(p)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := syscall.Removexattr(p, n); err != nil && err != syscall.ENODATA {
			return fmt.Errorf("remove xattr %s of %s: %w", n, p, err)
		}
	}
	return nil
}

func listXattrs(p string) ([]string, error) {
	buf := make([]byte, 4096)
	for {
		n, err := syscall.Listxattr(p, buf)
		switch {
		case err == syscall.ERANGE:
			buf = make([]byte, 2*len(buf))
			continue
		case err == syscall.ENOTSUP:
			return nil, nil
		case err != nil:
			return nil, fmt.Errorf("list xattrs of %s: %w", p, err)
		}
		var names []string
		for _, n := range bytes.Split(buf[:n], []byte{0}) {
			if len(n) > 0 {
				names = append(names, string(n))
			}
		}
		return names, nil
	}
}

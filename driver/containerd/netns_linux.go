package containerd

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/isol8/isol8/api"
)

// checkNetNS reports, as an invalid-argument error, a path that is not a
// network namespace, before the runtime fails on it with a less clear
// message.
func checkNetNS(p string) error {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return api.InvalidArgumentf("network namespace %s: %v", p, err)
	}
	defer unix.Close(fd)
	t, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil || t != unix.CLONE_NEWNET {
		return api.InvalidArgumentf("%s is not a network namespace", p)
	}
	return nil
}

// checkNetNSOwner refuses a network namespace to join that the sandbox's
// user namespace (at usernsPath, joined by path) does not own. The runtime
// (runc 1.1) enters that user namespace before joining the other
// namespaces, and from inside it may only join a network namespace owned
// by it or by one of its descendants; the sandbox's sysfs, too, can only
// be mounted by the owner of its network namespace. Without this check the
// runtime fails with "can't get final child's PID from pipe: EOF".
func checkNetNSOwner(netnsPath, usernsPath string) error {
	var want unix.Stat_t
	if err := unix.Stat(usernsPath, &want); err != nil {
		return fmt.Errorf("user namespace %s: %w", usernsPath, err)
	}
	fd, err := unix.Open(netnsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return api.InvalidArgumentf("network namespace %s: %v", netnsPath, err)
	}
	owner, err := unix.IoctlRetInt(fd, unix.NS_GET_USERNS)
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("owner of network namespace %s: %w", netnsPath, err)
	}
	// Walk up from the owner; NS_GET_PARENT fails above our own user
	// namespace.
	for {
		var st unix.Stat_t
		if err := unix.Fstat(owner, &st); err != nil {
			unix.Close(owner)
			return fmt.Errorf("owner of network namespace %s: %w", netnsPath, err)
		}
		if st.Dev == want.Dev && st.Ino == want.Ino {
			unix.Close(owner)
			return nil
		}
		parent, err := unix.IoctlRetInt(owner, unix.NS_GET_PARENT)
		unix.Close(owner)
		if err != nil {
			break
		}
		owner = parent
	}
	return api.InvalidArgumentf("network namespace %s is not owned by the sandbox's user namespace, "+
		"so the sandbox cannot join it: create it inside that user namespace, or ask for a fresh one", netnsPath)
}

// pinNetNS bind-mounts the network namespace of process pid (a created
// sandbox's init) at NetNSPinPath(id) (in netnsDir, made ready by
// sharedDir), so the path names that namespace
// for as long as the sandbox exists, whatever becomes of the pid.
func pinNetNS(id string, pid uint32) (_ string, retErr error) {
	src := "/proc/" + strconv.FormatUint(uint64(pid), 10) + "/ns/net"
	if err := notHostNetNS(src); err != nil {
		return "", err
	}
	pin := NetNSPinPath(id)
	f, err := os.OpenFile(pin, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return "", fmt.Errorf("pin network namespace of %s: %w", id, err)
	}
	_ = f.Close()
	defer func() {
		if retErr != nil {
			_ = os.Remove(pin)
		}
	}()
	if err := unix.Mount(src, pin, "", unix.MS_BIND, ""); err != nil {
		return "", fmt.Errorf("pin network namespace of %s: %w", id, err)
	}
	// The pid might have died and been reused between the check and the
	// mount: check what was pinned.
	if err := notHostNetNS(pin); err != nil {
		_ = unix.Unmount(pin, unix.MNT_DETACH)
		return "", err
	}
	return pin, nil
}

// notHostNetNS refuses a namespace file that is the host's (this
// process's) network namespace: a caller serving inside the sandbox's
// namespace must never end up listening on the host.
func notHostNetNS(p string) error {
	var ns, self unix.Stat_t
	if err := unix.Stat(p, &ns); err != nil {
		return fmt.Errorf("network namespace %s: %w", p, err)
	}
	if err := unix.Stat("/proc/self/ns/net", &self); err != nil {
		return fmt.Errorf("own network namespace: %w", err)
	}
	if ns.Dev == self.Dev && ns.Ino == self.Ino {
		return fmt.Errorf("network namespace %s is the host's", p)
	}
	return nil
}

// unpinNetNS removes a sandbox's pin, if there is one. The namespace goes
// away with the last process in it.
func unpinNetNS(id string) error {
	pin := NetNSPinPath(id)
	err := unix.Unmount(pin, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unpin network namespace of %s: %w", id, err)
	}
	if err := os.Remove(pin); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("unpin network namespace of %s: %w", id, err)
	}
	return nil
}

// sharedDir makes dir a mount point with shared propagation (as iproute2
// does for /run/netns), so that unmounting a pin also unmounts the copies
// mount namespaces made since then hold as peers or slaves, instead of
// keeping the network namespace alive there.
func sharedDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("network namespace pins: %w", err)
	}
	err := unix.Mount("", dir, "", unix.MS_SHARED|unix.MS_REC, "")
	if errors.Is(err, unix.EINVAL) { // not a mount point yet
		if err = unix.Mount(dir, dir, "", unix.MS_BIND|unix.MS_REC, ""); err == nil {
			err = unix.Mount("", dir, "", unix.MS_SHARED|unix.MS_REC, "")
		}
	}
	if err != nil {
		return fmt.Errorf("network namespace pins: make %s a shared mount: %w", dir, err)
	}
	return nil
}

// netnsPins lists the sandbox ids that have a pin.
func netnsPins() ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list network namespace pins: %w", err)
	}
	ids := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.Type().IsRegular() {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

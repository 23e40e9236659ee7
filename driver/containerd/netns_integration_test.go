//go:build linux

package containerd

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/isol8/isol8/driver"
	"github.com/isol8/isol8/internal/testenv"
	"github.com/isol8/isol8/internal/userns"
	"github.com/isol8/isol8/oci"
)

// testImage is the bash runtime image `isol8 setup` builds (the image
// package's name for it; that package is not imported here).
const testImage = "isol8:bash"

// proxyPort is where the tests serve inside a sandbox's namespace: each
// namespace has a loopback of its own, so every test may use the same port.
const proxyPort = 8118

// connectScript connects to the test's server on the sandbox's loopback
// and prints its greeting, or "unreachable".
var connectScript = fmt.Sprintf(`if exec 3<>/dev/tcp/127.0.0.1/%d; then head -n1 <&3; else echo unreachable; fi`, proxyPort)

func newNetTestDriver(t testing.TB) *Driver {
	t.Helper()
	addr := testenv.MustHaveContainerd(t)
	testenv.MustHaveCommand(t, "unshare")
	d, err := New(t.Context(), Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.ImageInfo(t.Context(), testImage); err != nil {
		if errdefs.IsNotFound(err) && !testenv.Strict() {
			t.Skipf("image %s missing: run `make test` (it runs `isol8 setup`)", testImage)
		}
		t.Fatalf("image %s: %v", testImage, err)
	}
	return d
}

func testID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "isol8-nettest-" + hex.EncodeToString(b[:])
}

// testIdentity is a sandbox's host id range and the user namespace made
// for it, as the engine makes them.
type testIdentity struct {
	lease  *userns.Lease
	holder *userns.Holder
}

func newTestIdentity(t testing.TB, id string) *testIdentity {
	t.Helper()
	alloc, err := userns.New(userns.Config{})
	if err != nil {
		t.Fatal(err)
	}
	lease, err := alloc.Allocate(id)
	if err != nil {
		t.Fatal(err)
	}
	tools, err := userns.LookTools()
	if err != nil {
		t.Fatal(err)
	}
	holder, err := userns.NewHolder(t.Context(), tools, lease.HostID, lease.Size)
	if err != nil {
		_ = lease.Release()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		holder.Close()
		_ = lease.Release()
	})
	return &testIdentity{lease: lease, holder: holder}
}

// createSandbox creates (does not start) sandbox id running bash -c script
// as root of its own user namespace (ident's, or a new one), as the engine
// runs its sandboxes, with network netOpt plus the attachment att. The
// sandbox is removed at the end of the test unless the test did.
func createSandbox(t testing.TB, d *Driver, id string, ident *testIdentity, netOpt oci.Opt, att driver.NetworkAttachment, script string) (driver.Sandbox, error) {
	t.Helper()
	spec, err := oci.New(netOpt, oci.WithHostname("nettest"))
	if err != nil {
		t.Fatal(err)
	}
	spec.Process.Args = []string{"/bin/bash", "-c", script}
	if ident == nil {
		ident = newTestIdentity(t, id)
	}
	lease := ident.lease
	if err := oci.WithUserNamespace(ident.holder.Path(), lease.HostID, lease.Size)(spec); err != nil {
		t.Fatal(err)
	}
	if err := oci.WithNofileByInit()(spec); err != nil {
		t.Fatal(err)
	}
	sb, err := d.Create(t.Context(), driver.CreateRequest{
		ID: id, Image: testImage, Spec: spec, Network: att,
		Labels: map[string]string{driver.LabelManaged: "true", "isol8.test": "netns"},
	})
	t.Cleanup(func() {
		if err := d.Remove(context.WithoutCancel(t.Context()), id); err != nil {
			t.Errorf("remove %s: %v", id, err)
		}
	})
	return sb, err
}

// output starts the sandbox and returns the first line it prints.
func output(t *testing.T, sb driver.Sandbox) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	stdio, err := sb.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = stdio.Stdin.Close()
	go func() { _, _ = io.Copy(io.Discard, stdio.Stderr) }()
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdio.Stdout).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case s := <-line:
		return s
	case <-ctx.Done():
		t.Fatalf("sandbox %s printed nothing within 60s", sb.ID())
		return ""
	}
}

// inNetNS runs f on an OS thread switched into the network namespace at
// path. If the thread cannot be switched back it is left locked, so the
// runtime discards it with the goroutine.
func inNetNS(path string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		origin, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer origin.Close()
		target, err := netns.GetFromPath(path)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- err
			return
		}
		ferr := f()
		if err := netns.Set(origin); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("switch back: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// serveGreeting listens on 127.0.0.1:proxyPort inside the namespace at
// path and answers every connection with greeting. It returns how many
// connections it has accepted so far.
func serveGreeting(t *testing.T, path, greeting string) func() int {
	t.Helper()
	var ln net.Listener
	if err := inNetNS(path, func() (err error) {
		ln, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(proxyPort))
		return err
	}); err != nil {
		t.Fatalf("listen inside %s: %v", path, err)
	}
	accepted := make(chan int, 1)
	accepted <- 0
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- <-accepted + 1
			_, _ = io.WriteString(c, greeting+"\n")
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return func() int { n := <-accepted; accepted <- n; return n }
}

func greeting() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "hello-from-the-test-" + hex.EncodeToString(b[:])
}

// assertUnpinned checks that nothing is left of a sandbox's pin: no file,
// no mount.
func assertUnpinned(t *testing.T, id string) {
	t.Helper()
	pin := NetNSPinPath(id)
	if _, err := os.Lstat(pin); !os.IsNotExist(err) {
		t.Errorf("network namespace pin %s left: %v", pin, err)
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mounts), " "+pin+" ") {
		t.Errorf("network namespace pin %s still mounted", pin)
	}
}

// nsInode is the inode number naming the namespace at path.
func nsInode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// assertNetNSGone checks that no process is in the network namespace with
// inode ino and no mount namespace pins it (mountinfo names a bind-mounted
// namespace "net:[ino]" as its root), allowing a few seconds for the
// sandbox's processes to be reaped.
func assertNetNSGone(t *testing.T, ino uint64) {
	t.Helper()
	name := fmt.Sprintf("net:[%d]", ino)
	var holders []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		holders = netNSHolders(name)
		if len(holders) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(holders) > 0 {
		t.Errorf("network namespace %s still held by %v", name, holders)
	}
}

func netNSHolders(name string) []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		if mi, err := os.ReadFile(p + "/mountinfo"); err == nil && strings.Contains(string(mi), " "+name+" ") {
			out = append(out, p+"/mountinfo")
		}
		tasks, _ := filepath.Glob(p + "/task/*/ns/net")
		for _, l := range tasks {
			if target, err := os.Readlink(l); err == nil && target == name {
				out = append(out, l)
			}
		}
	}
	return out
}

// A sandbox made with a fresh network namespace reports a path to it; the
// test enters that namespace, serves on its loopback, and the program in
// the sandbox reads the greeting. A second sandbox, with a fresh namespace
// of its own, cannot reach that server. Both pins go with their
// sandboxes, the second one removed by another driver connection.
func TestFreshNetNSServedFromHost(t *testing.T) {
	d := newNetTestDriver(t)
	none := oci.WithNetwork(oci.NetworkNone, "")
	a, err := createSandbox(t, d, testID(), nil, none, driver.FreshNetwork(), connectScript)
	if err != nil {
		t.Fatal(err)
	}
	path := a.NetNSPath()
	if path != NetNSPinPath(a.ID()) {
		t.Fatalf("NetNSPath = %q, want the pin %q", path, NetNSPinPath(a.ID()))
	}
	if err := notHostNetNS(path); err != nil {
		t.Fatal(err)
	}
	hello := greeting()
	accepted := serveGreeting(t, path, hello)

	b, err := createSandbox(t, d, testID(), nil, none, driver.FreshNetwork(), connectScript)
	if err != nil {
		t.Fatal(err)
	}
	if b.NetNSPath() == "" || b.NetNSPath() == path {
		t.Fatalf("second sandbox reports namespace %q (first: %q)", b.NetNSPath(), path)
	}
	if got := output(t, b); got != "unreachable" {
		t.Errorf("second sandbox read %q from 127.0.0.1:%d, want unreachable (its loopback is its own)", got, proxyPort)
	}
	if n := accepted(); n != 0 {
		t.Errorf("the server in the first sandbox's namespace accepted %d connections before that sandbox started", n)
	}
	if got := output(t, a); got != hello {
		t.Errorf("sandbox read %q, want the test's greeting %q", got, hello)
	}
	if n := accepted(); n != 1 {
		t.Errorf("server accepted %d connections, want 1", n)
	}

	inoA, inoB := nsInode(t, path), nsInode(t, b.NetNSPath())
	if err := a.Delete(t.Context()); err != nil {
		t.Fatal(err)
	}
	assertUnpinned(t, a.ID())
	assertNetNSGone(t, inoA)

	other, err := New(t.Context(), Config{Address: d.Address()})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Remove(t.Context(), b.ID()); err != nil {
		t.Fatal(err)
	}
	assertUnpinned(t, b.ID())
	assertNetNSGone(t, inoB)
}

// rootNetNS makes a network namespace as host root (owned by the host's
// user namespace), with lo up, pinned under a temporary directory, and
// removes it at the end of the test.
func rootNetNS(t *testing.T) string {
	t.Helper()
	pin := newPinFile(t)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		origin, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer origin.Close()
		ns, err := netns.New() // unshares this thread into the new namespace
		if err != nil {
			errc <- err
			return
		}
		defer ns.Close()
		src := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		err = unix.Mount(src, pin, "", unix.MS_BIND, "")
		if serr := netns.Set(origin); serr != nil {
			errc <- errors.Join(err, serr)
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatalf("make a network namespace: %v", err)
	}
	if err := inNetNS(pin, upLoopback); err != nil {
		t.Fatalf("bring up lo: %v", err)
	}
	return pin
}

// userNetNS makes a network namespace owned by the user namespace at
// usernsPath (a process that entered it unshares one, which the test pins
// from the host), with lo up, and removes it at the end of the test.
func userNetNS(t *testing.T, usernsPath string) string {
	t.Helper()
	testenv.MustHaveCommand(t, "nsenter")
	pin := newPinFile(t)
	cmd := exec.Command("nsenter", "--user="+usernsPath, "--", "unshare", "--net", "--", "cat")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	}()
	src := fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)
	deadline := time.Now().Add(10 * time.Second)
	for notHostNetNS(src) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("nsenter/unshare made no network namespace within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := unix.Mount(src, pin, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("pin the network namespace: %v", err)
	}
	if err := inNetNS(pin, upLoopback); err != nil {
		t.Fatalf("bring up lo: %v", err)
	}
	return pin
}

// newPinFile makes the file a test's network namespace is bind-mounted on,
// and unmounts it at the end of the test (the namespace goes with it).
func newPinFile(t *testing.T) string {
	t.Helper()
	pin := filepath.Join(t.TempDir(), "netns")
	if err := os.WriteFile(pin, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(pin, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			t.Errorf("remove the test's network namespace: %v", err)
		}
	})
	return pin
}

func upLoopback() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	return netlink.LinkSetUp(lo)
}

// A sandbox joins a network namespace the test made by path, and its
// program reaches the server the test serves inside it. The namespace is
// owned by the sandbox's user namespace, as the runtime needs it to be.
// It is the caller's: deleting the sandbox leaves it alone.
func TestJoinNetNSByPath(t *testing.T) {
	d := newNetTestDriver(t)
	id := testID()
	ident := newTestIdentity(t, id)
	path := userNetNS(t, ident.holder.Path())
	hello := greeting()
	accepted := serveGreeting(t, path, hello)
	sb, err := createSandbox(t, d, id, ident, oci.WithNetwork(oci.NetworkFiltered, path), driver.JoinNetwork(path), connectScript)
	if err != nil {
		t.Fatal(err)
	}
	if sb.NetNSPath() != path {
		t.Fatalf("NetNSPath = %q, want the joined %q", sb.NetNSPath(), path)
	}
	if got := output(t, sb); got != hello {
		t.Errorf("sandbox read %q, want the test's greeting %q", got, hello)
	}
	if n := accepted(); n != 1 {
		t.Errorf("server accepted %d connections, want 1", n)
	}
	if err := sb.Delete(t.Context()); err != nil {
		t.Fatal(err)
	}
	assertUnpinned(t, sb.ID())
	if err := checkNetNS(path); err != nil {
		t.Errorf("deleting the sandbox broke the caller's namespace: %v", err)
	}
}

// A network namespace made by host root cannot be joined by a sandbox in
// a user namespace of its own (the runtime enters that first, and then has
// no privilege over the host's namespaces): the driver says so clearly
// instead of the runtime's "can't get final child's PID from pipe: EOF".
func TestJoinRootNetNSRefused(t *testing.T) {
	d := newNetTestDriver(t)
	path := rootNetNS(t)
	id := testID()
	_, err := createSandbox(t, d, id, nil, oci.WithNetwork(oci.NetworkFiltered, path), driver.JoinNetwork(path), connectScript)
	if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "not owned by the sandbox's user namespace") {
		t.Fatalf("Create = %v, want an invalid-argument error about the namespace's owner", err)
	}
	if _, err := d.Client().LoadContainer(d.withNS(t.Context()), id); !errdefs.IsNotFound(err) {
		t.Errorf("refused create made container %s: %v", id, err)
	}
}

// Attachments that are no network namespace or contradict the spec are
// refused before anything is made.
func TestNetworkAttachmentRefused(t *testing.T) {
	d := newNetTestDriver(t)
	notNS := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notNS, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		net  oci.Opt
		att  driver.NetworkAttachment
	}{
		{"not a namespace", oci.WithNetwork(oci.NetworkFiltered, notNS), driver.JoinNetwork(notNS)},
		{"missing", oci.WithNetwork(oci.NetworkFiltered, "/nonexistent/netns"), driver.JoinNetwork("/nonexistent/netns")},
		{"a user namespace", oci.WithNetwork(oci.NetworkFiltered, "/proc/1/ns/user"), driver.JoinNetwork("/proc/1/ns/user")},
		{"fresh on host network", oci.WithNetwork(oci.NetworkHost, ""), driver.FreshNetwork()},
		{"join with spec none", oci.WithNetwork(oci.NetworkNone, ""), driver.JoinNetwork("/proc/1/ns/net")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := testID()
			_, err := createSandbox(t, d, id, nil, c.net, c.att, "true")
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("Create = %v, want an invalid-argument error", err)
			}
			if _, err := d.Client().LoadContainer(d.withNS(t.Context()), id); !errdefs.IsNotFound(err) {
				t.Errorf("refused create made container %s: %v", id, err)
			}
			if _, err := os.Stat(FIFOSetDir(id)); !os.IsNotExist(err) {
				t.Errorf("refused create left FIFOs of %s: %v", id, err)
			}
			assertUnpinned(t, id)
		})
	}
}

// Prune unpins the network namespaces of sandboxes that no longer exist
// (their creator died before removing them) and keeps those of live ones.
func TestPruneNetNSPins(t *testing.T) {
	d := newNetTestDriver(t)
	live, err := createSandbox(t, d, testID(), nil, oci.WithNetwork(oci.NetworkNone, ""), driver.FreshNetwork(), "true")
	if err != nil {
		t.Fatal(err)
	}
	orphan := testID()
	pin := NetNSPinPath(orphan)
	if err := os.WriteFile(pin, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(rootNetNS(t), pin, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unpinNetNS(orphan) })
	n, err := d.Prune(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n < 1 {
		t.Errorf("Prune removed %d items, want at least the orphan pin", n)
	}
	assertUnpinned(t, orphan)
	if err := checkNetNS(live.NetNSPath()); err != nil {
		t.Errorf("Prune unpinned live sandbox %s: %v", live.ID(), err)
	}
}

// BenchmarkCreateNetwork measures Create (user namespace made beforehand,
// as the engine does) with the spec's new namespace and with a fresh one
// the driver pins, and reports p50/p95 in ms.
func BenchmarkCreateNetwork(b *testing.B) {
	d := newNetTestDriver(b)
	none := oci.WithNetwork(oci.NetworkNone, "")
	for _, c := range []struct {
		name string
		att  driver.NetworkAttachment
	}{{"spec", driver.NetworkAttachment{}}, {"fresh", driver.FreshNetwork()}} {
		b.Run(c.name, func(b *testing.B) {
			var times []time.Duration
			for range b.N {
				b.StopTimer()
				id := testID()
				ident := newTestIdentity(b, id)
				b.StartTimer()
				t0 := time.Now()
				sb, err := createSandbox(b, d, id, ident, none, c.att, "true")
				times = append(times, time.Since(t0))
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				if err := sb.Delete(b.Context()); err != nil {
					b.Fatal(err)
				}
				// Free the identity now (Close and Release are idempotent), so
				// long runs do not exhaust the id range.
				ident.holder.Close()
				_ = ident.lease.Release()
				b.StartTimer()
			}
			slices.Sort(times)
			ms := func(q float64) float64 {
				return float64(times[int(q*float64(len(times)-1))].Microseconds()) / 1000
			}
			b.ReportMetric(ms(0.5), "p50-ms")
			b.ReportMetric(ms(0.95), "p95-ms")
		})
	}
}

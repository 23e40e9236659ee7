package netns

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/isol8/isol8/internal/testenv"
)

// newPinnedNS makes a network namespace (lo down, as the kernel makes
// it), pins it on a file in a temp dir and returns the pin; the pin is
// removed at the end of the test.
func newPinnedNS(t *testing.T) string {
	t.Helper()
	testenv.MustHaveRoot(t)
	pin := filepath.Join(t.TempDir(), "ns")
	if err := os.WriteFile(pin, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		origin, err := vnetns.Get()
		if err != nil {
			errc <- err
			return
		}
		ns, err := vnetns.New()
		if err != nil {
			errc <- err
			return
		}
		defer ns.Close()
		err = unix.Mount("/proc/thread-self/ns/net", pin, "", unix.MS_BIND, "")
		if serr := vnetns.Set(origin); serr != nil {
			errc <- serr // the thread stays locked and is discarded
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(pin, unix.MNT_DETACH) })
	return pin
}

func ownNS(t *testing.T) uint64 {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// Listen opens the socket inside the namespace: the host's 127.0.0.1 does
// not reach it, a client in the namespace does, and no thread is left in
// the namespace.
func TestListenInsideNamespace(t *testing.T) {
	pin := newPinnedNS(t)
	ln, err := Listen(t.Context(), pin, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("inside\n"))
			c.Close()
		}
	}()
	// From the host: nothing listens there (or something else does).
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		buf := make([]byte, 7)
		n, _ := c.Read(buf)
		c.Close()
		if string(buf[:n]) == "inside\n" {
			t.Fatal("the namespace's listener answered on the host's loopback")
		}
	}
	// From inside the namespace (lo was brought up by Listen).
	var got string
	err = Do(pin, func() error {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		buf := make([]byte, 7)
		n, err := c.Read(buf)
		got = string(buf[:n])
		return err
	})
	if err != nil || got != "inside\n" {
		t.Fatalf("inside: %q %v", got, err)
	}
	links, err := Links(pin)
	if err != nil || !slices.Equal(links, []string{"lo"}) {
		t.Fatalf("links %v %v", links, err)
	}
	// Every thread of the process is back in the host's namespace.
	self := ownNS(t)
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, task := range tasks {
		var st unix.Stat_t
		if err := unix.Stat("/proc/self/task/"+task.Name()+"/ns/net", &st); err == nil && st.Ino != self {
			t.Errorf("thread %s is in another network namespace", task.Name())
		}
	}
}

// Do refuses the engine's own namespace and paths that are no namespace.
func TestDoRefuses(t *testing.T) {
	testenv.MustHaveRoot(t)
	err := Do("/proc/thread-self/ns/net", func() error { return errors.New("ran in the host's namespace") })
	if err == nil || !strings.Contains(err.Error(), "is the engine's own") {
		t.Fatalf("own namespace: %v", err)
	}
	f := filepath.Join(t.TempDir(), "plain")
	os.WriteFile(f, nil, 0o600)
	if err := Do(f, func() error { return nil }); err == nil {
		t.Fatal("a plain file was entered")
	}
	if _, err := Listen(t.Context(), filepath.Join(t.TempDir(), "missing"), "127.0.0.1:0"); err == nil {
		t.Fatal("Listen in a missing namespace succeeded")
	}
}

// A function that panics inside the namespace is an error, not a hang and
// not a thread left in the namespace for others.
func TestDoPanics(t *testing.T) {
	pin := newPinnedNS(t)
	err := Do(pin, func() error { panic("boom") })
	if err == nil || !strings.Contains(err.Error(), "aborted: boom") {
		t.Fatalf("Do = %v", err)
	}
	self := ownNS(t)
	for i := 0; i < 20; i++ {
		if err := Do("/proc/thread-self/ns/net", func() error { return nil }); err == nil {
			t.Fatal("own namespace entered")
		}
		if ownNS(t) != self {
			t.Fatal("a goroutine runs in the sandbox's namespace")
		}
	}
}

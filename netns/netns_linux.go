package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Do runs fn on a locked OS thread inside the network namespace at path
// and switches back afterwards. fn must not start goroutines that expect
// to run in the namespace: only the calling thread is in it. Do refuses a
// path that is the caller's own namespace, so a mistake can never make the
// engine serve on the host.
func Do(path string, fn func() error) error {
	target, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	// A goroutine of its own: if switching back fails, its locked thread is
	// discarded when it returns, and the caller's thread is never touched.
	go func() {
		sent := false
		defer func() {
			// fn panicked or exited its goroutine: the thread may still be
			// in the namespace, and it stays locked, so the runtime
			// discards it.
			if !sent {
				errc <- fmt.Errorf("network namespace %s: aborted: %v", path, recover())
			}
		}()
		err := doLocked(path, target, fn)
		sent = true
		errc <- err
	}()
	return <-errc
}

func doLocked(path string, target netns.NsHandle, fn func() error) error {
	runtime.LockOSThread()
	origin, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("own network namespace: %w", err)
	}
	defer origin.Close()
	if origin.Equal(target) {
		runtime.UnlockOSThread()
		return fmt.Errorf("network namespace %s is the engine's own", path)
	}
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter network namespace %s: %w", path, err)
	}
	fnErr := fn()
	if err := netns.Set(origin); err != nil {
		// Leave the thread locked: the runtime kills it when this
		// goroutine exits, instead of scheduling other work on a thread
		// that sits in the sandbox's namespace.
		return errors.Join(fnErr, fmt.Errorf("return from network namespace %s: %w", path, err))
	}
	runtime.UnlockOSThread()
	return fnErr
}

// LoopbackUp sets lo up in the calling thread's namespace (called inside
// Do). The runtime normally does it already; it is idempotent.
func loopbackUp() error {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if lo.Attrs().Flags&net.FlagUp != 0 {
		return nil
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}

// LoopbackUp brings lo up in the network namespace at path.
func LoopbackUp(path string) error {
	return Do(path, loopbackUp)
}

// Listen brings lo up in the network namespace at path and opens a TCP
// listener on addr (such as "127.0.0.1:8118") inside it. The listener is
// an ordinary one of the engine process: accepting and serving it need no
// namespace switch.
func Listen(ctx context.Context, path, addr string) (net.Listener, error) {
	var ln net.Listener
	err := Do(path, func() error {
		if err := loopbackUp(); err != nil {
			return err
		}
		var lc net.ListenConfig
		l, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		ln = l
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", path, err)
	}
	return ln, nil
}

// Links lists the names of the interfaces in the namespace at path (tests
// and diagnostics: a sandbox namespace holds lo only).
func Links(path string) ([]string, error) {
	var names []string
	err := Do(path, func() error {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return fmt.Errorf("netlink: %w", err)
		}
		defer h.Close()
		links, err := h.LinkList()
		if err != nil {
			return fmt.Errorf("list links: %w", err)
		}
		for _, l := range links {
			names = append(names, l.Attrs().Name)
		}
		return nil
	})
	return names, err
}

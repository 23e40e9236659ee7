package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
)

// In persistent mode user code could plant /sandbox/.local/bin/apk, which a
// later bash --install ran as container root with the request's
// environment. Package installs are refused now (for bash for good; for
// every runtime until the filtered network carries them), and nothing of the
// planted file ever runs as root.
func TestNoRootInstallPath(t *testing.T) {
	e := newTestEngine(t, Options{Mode: ModePersistent})
	mustHaveImage(t, e, "bash")
	res := run(t, e, Request{Runtime: "bash", Code: `
mkdir -p /sandbox/.local/bin
printf '#!/bin/sh\nid -u > /sandbox/pwned\n' > /sandbox/.local/bin/apk
chmod +x /sandbox/.local/bin/apk
echo planted`})
	if res.Stdout != "planted" {
		t.Fatalf("plant: %q %q", res.Stdout, res.Stderr)
	}
	_, err := e.Execute(t.Context(), Request{Runtime: "bash", Code: "echo hi", InstallPackages: []string{"curl"}})
	if err == nil || !errdefs.IsInvalidArgument(err) {
		t.Errorf("bash install: err %v, want an invalid-argument refusal", err)
	}
	res = run(t, e, Request{Runtime: "bash", Code: "cat /sandbox/pwned 2>/dev/null || echo none"})
	if res.Stdout != "none" {
		t.Fatalf("the planted installer ran (as uid %q)", res.Stdout)
	}
}

// User code holds no capability in any set, bounding set included.
func TestUserCodeCapabilitySetsEmpty(t *testing.T) { matrix(t, testUserCodeCapabilitySetsEmpty) }

func testUserCodeCapabilitySetsEmpty(t *testing.T, b backend) {
	e := b.engine(t, Options{})
	mustHaveImage(t, e, "bash")
	res := run(t, e, Request{Runtime: "bash", Code: "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' /proc/self/status"})
	want := "CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t0000000000000000\nCapAmb:\t0000000000000000"
	if res.Stdout != want {
		t.Fatalf("capability sets of user code:\n%s\nwant all zero", res.Stdout)
	}
}

// A cancel that arrives while the agent is still starting the program must
// kill it: the caller gets context.Canceled at once, not a dead-agent error
// after the host deadline.
func TestCancelAtStartIsPrompt(t *testing.T) { matrix(t, testCancelAtStartIsPrompt) }

func testCancelAtStartIsPrompt(t *testing.T, b backend) {
	e := fastPool(t, Options{})
	mustHaveImage(t, e, "bash")
	run(t, e, Request{Runtime: "bash", Code: "true"}) // the pool holds a ready sandbox
	// The window between the Exec frame and the fork is a millisecond or
	// so wide (the agent first writes the inline file): sweep across it.
	var delays []time.Duration
	for d := time.Duration(0); d < 4*time.Millisecond; d += 100 * time.Microsecond {
		delays = append(delays, d)
	}
	for i, d := range delays {
		ctx, cancel := context.WithCancel(t.Context())
		start := time.Now()
		done := make(chan error, 1)
		go func() {
			_, err := e.Execute(ctx, Request{Runtime: "bash", Code: "sleep 60",
				Files: map[string]string{"/sandbox/big": strings.Repeat("x", 200<<10)}})
			done <- err
		}()
		time.Sleep(d)
		cancel()
		err := <-done
		took := time.Since(start)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("attempt %d (cancel after %s): err %v after %s, want context.Canceled", i, d, err, took)
		}
		if took > 5*time.Second {
			t.Fatalf("attempt %d (cancel after %s): took %s", i, d, took)
		}
	}
	// The engine is still usable afterwards.
	if res := run(t, e, Request{Runtime: "bash", Code: "echo alive"}); res.Stdout != "alive" {
		t.Fatalf("after cancels: %q %q", res.Stdout, res.Stderr)
	}
}

// A root process could replace /dev/null with a regular file that later
// executions read as their stdin. Before the root install path was removed,
// persistent-mode user code planted an executable "apk" that the next bash
// install ran as container root. Now the install is refused; a tampered /dev
// would also fail the fast pool reset's "dev" item (TestCheckDev).
func TestDevNullUntouchable(t *testing.T) { matrix(t, testDevNullUntouchable) }

func testDevNullUntouchable(t *testing.T, b backend) {
	e := b.engine(t, Options{Mode: ModePersistent})
	mustHaveImage(t, e, "bash")
	res := run(t, e, Request{Runtime: "bash", Code: `
mkdir -p /sandbox/.local/bin
printf '#!/bin/sh\nrm -f /dev/null && echo planted-dev > /dev/null && chmod 666 /dev/null\n' > /sandbox/.local/bin/apk
chmod +x /sandbox/.local/bin/apk
echo planted`})
	if res.Stdout != "planted" {
		t.Fatalf("plant: %q %q", res.Stdout, res.Stderr)
	}
	_, err := e.Execute(t.Context(), Request{Runtime: "bash", Code: "echo ran", InstallPackages: []string{"x"}})
	if err == nil || !errdefs.IsInvalidArgument(err) {
		t.Errorf("bash install: err %v, want an invalid-argument error", err)
	}
	res = run(t, e, Request{Runtime: "bash", Code: "stat -c %F /dev/null; cat /dev/null | wc -c"})
	if res.Stdout != "character special file\n0" {
		t.Fatalf("/dev/null after a tampering attempt: %q %q", res.Stdout, res.Stderr)
	}
}

package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/isol8/isol8/driver"
)

func TestFastPoolReuseHygiene(t *testing.T) { matrix(t, testFastPoolReuseHygiene) }

func testFastPoolReuseHygiene(t *testing.T, b backend) {
	e := b.engine(t, Options{PoolStrategy: PoolFast, PoolSize: &PoolSize{Clean: 1, Dirty: 1}})
	mustHaveImage(t, e, "bash")
	first := run(t, e, Request{Runtime: "bash", Env: map[string]string{"LEAK": "from-run-1"}, Code: `
setsid nohup sleep 9999 >/dev/null 2>&1 &
nohup sh -c 'while :; do ls /proc >/dev/null; sleep 0.1; done' >/dev/null 2>&1 &
echo secret > /sandbox/secret_data.txt
echo tmp > /tmp/tmp_data.txt
echo shm > /dev/shm/shm_data
echo started`})
	if first.Stdout != "started" {
		t.Fatalf("run 1: %q %q", first.Stdout, first.Stderr)
	}
	second := run(t, e, Request{Runtime: "bash", Code: `
ps -eo user=,comm= | grep -v '^root' | grep -Ev ' (ps|grep|bash)$' || true
ls -A /sandbox /tmp /dev/shm
echo "LEAK=${LEAK:-not_set}"`})
	if second.ContainerID != first.ContainerID {
		t.Fatalf("fast pool did not reuse the sandbox: %s then %s", first.ContainerID, second.ContainerID)
	}
	for _, bad := range []string{"sleep", "secret_data", "tmp_data", "shm_data", "from-run-1"} {
		if strings.Contains(second.Stdout, bad) {
			t.Fatalf("run 2 sees %q from run 1:\n%s", bad, second.Stdout)
		}
	}
	if !strings.Contains(second.Stdout, "LEAK=not_set") {
		t.Fatalf("run 2 output %q", second.Stdout)
	}
}

func TestSecurePoolNeverReuses(t *testing.T) { matrix(t, testSecurePoolNeverReuses) }

func testSecurePoolNeverReuses(t *testing.T, b backend) {
	e := b.engine(t, Options{PoolStrategy: PoolSecure, PoolSize: &PoolSize{Clean: 2, Dirty: 1}})
	mustHaveImage(t, e, "bash")
	seen := map[string]bool{}
	for i := 0; i < 4; i++ {
		res := run(t, e, Request{Runtime: "bash", Code: "ls -A /sandbox; echo marker > /sandbox/m; echo ok"})
		if res.Stdout != "ok" {
			t.Fatalf("run %d saw a used sandbox: %q", i, res.Stdout)
		}
		if seen[res.ContainerID] {
			t.Fatalf("run %d reused sandbox %s", i, res.ContainerID)
		}
		seen[res.ContainerID] = true
	}
}

func TestConcurrentExecutions(t *testing.T) { matrix(t, testConcurrentExecutions) }

func testConcurrentExecutions(t *testing.T, b backend) {
	e := b.engine(t, Options{MaxConcurrent: 4, PoolSize: &PoolSize{Clean: 4, Dirty: 4}})
	mustHaveImage(t, e, "python", "bash")
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := Request{Runtime: "python", Code: fmt.Sprintf("import sys\nfor j in range(200): print(%d, j)\nprint('err-%d', file=sys.stderr)", i, i)}
			if i%2 == 1 {
				req = Request{Runtime: "bash", Code: fmt.Sprintf("for j in $(seq 0 199); do echo %d $j; done; echo err-%d >&2", i, i)}
			}
			res, err := e.Execute(t.Context(), req)
			if err != nil {
				errs <- fmt.Errorf("execution %d: %w", i, err)
				return
			}
			var want strings.Builder
			for j := 0; j < 200; j++ {
				fmt.Fprintf(&want, "%d %d\n", i, j)
			}
			if res.ExitCode != 0 || res.Stdout != strings.TrimSpace(want.String()) || res.Stderr != fmt.Sprintf("err-%d", i) {
				errs <- fmt.Errorf("execution %d: exit %d, mixed or wrong output (stderr %q)", i, res.ExitCode, res.Stderr)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestPersistentMode(t *testing.T) { matrix(t, testPersistentMode) }

func testPersistentMode(t *testing.T, b backend) {
	e := b.engine(t, Options{Mode: ModePersistent})
	mustHaveImage(t, e, "python")
	ctx := t.Context()
	if err := e.PutFile(ctx, "/sandbox/x", []byte("x")); err == nil || !strings.Contains(err.Error(), "No active container. Call execute() first in persistent mode.") {
		t.Fatalf("PutFile before execute: %v", err)
	}
	if _, err := e.GetFile(ctx, "/sandbox/x"); err == nil || !strings.Contains(err.Error(), "No active container") {
		t.Fatalf("GetFile before execute: %v", err)
	}
	r1 := run(t, e, Request{Runtime: "python", Code: "open('/sandbox/x.txt','w').write('100'); print('written')"})
	r2 := run(t, e, Request{Runtime: "python", Code: "print(open('/sandbox/x.txt').read())"})
	if r2.Stdout != "100" || r1.ContainerID != r2.ContainerID {
		t.Fatalf("state did not persist: %q (%s vs %s)", r2.Stdout, r1.ContainerID, r2.ContainerID)
	}

	data := bytes.Repeat(make([]byte, 256), 4096) // 1 MiB with every byte value
	for i := range data {
		data[i] = byte(i)
	}
	if err := e.PutFile(ctx, "/sandbox/bin/data.bin", data); err != nil {
		t.Fatal(err)
	}
	check := run(t, e, Request{Runtime: "python", Code: "import hashlib; print(hashlib.sha256(open('/sandbox/bin/data.bin','rb').read()).hexdigest())"})
	got, err := e.GetFile(ctx, "/sandbox/bin/data.bin")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GetFile round trip: err %v, %d bytes, equal %v (sha in sandbox %s)", err, len(got), bytes.Equal(got, data), check.Stdout)
	}

	// Escapes: traversal, absolute paths elsewhere, symlinks pointing out.
	run(t, e, Request{Runtime: "python", Code: "import os; os.symlink('/etc', '/sandbox/etc-link'); os.symlink('/etc/passwd', '/sandbox/passwd-link'); print('ok')"})
	for _, p := range []string{"/etc/passwd", "/sandbox/../etc/passwd", "../etc/passwd", "/sandbox/etc-link/passwd", "/sandbox/passwd-link", "/tmp/x", "/sandbox", ""} {
		if _, err := e.GetFile(ctx, p); err == nil {
			t.Errorf("GetFile(%q) succeeded", p)
		}
		if err := e.PutFile(ctx, p, []byte("pwned")); err == nil {
			t.Errorf("PutFile(%q) succeeded", p)
		}
	}

	_, err = e.Execute(ctx, Request{Runtime: "bash", Code: "echo hi"})
	if err == nil || !strings.Contains(err.Error(), `Cannot switch runtime from "python" to "bash"`) {
		t.Fatalf("runtime switch: %v", err)
	}
	if !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("runtime switch error class: %v", err)
	}
}

func TestStreamCancelLeavesNothing(t *testing.T) { matrix(t, testStreamCancelLeavesNothing) }

func testStreamCancelLeavesNothing(t *testing.T, b backend) {
	e := b.engine(t, Options{})
	mustHaveImage(t, e, "python")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch, err := e.ExecuteStream(ctx, Request{Runtime: "python", Code: "import time\nwhile True:\n    print('tick', flush=True)\n    time.sleep(0.1)"})
	if err != nil {
		t.Fatal(err)
	}
	for ev := range ch {
		if ev.Type == EventStdout {
			cancel()
			break
		}
	}
	for range ch {
		// drain until the engine closes the stream
	}
	ids := liveIDs(e)
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, e, ids...)
}

func TestStopLeavesNothing(t *testing.T) { matrix(t, testStopLeavesNothing) }

func testStopLeavesNothing(t *testing.T, b backend) {
	e := b.engine(t, Options{PoolStrategy: PoolSecure, PoolSize: &PoolSize{Clean: 2, Dirty: 2}})
	mustHaveImage(t, e, "bash")
	if err := e.Prewarm(t.Context(), "bash"); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, run(t, e, Request{Runtime: "bash", Code: "echo hi"}).ContainerID)
	}
	ids = append(ids, liveIDs(e)...)
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	assertNothingLeft(t, e, ids...)
	// Also sandboxes the pool was still creating when Stop came: nothing
	// this test process made may remain (tests do not run in parallel, and
	// every other test's engine is stopped by now).
	if mine := sandboxIDsOf(t, e, map[string]string{driver.LabelPID: strconv.Itoa(os.Getpid())}); len(mine) != 0 {
		t.Fatalf("containers of this process left after Stop: %v", mine)
	}
	if _, err := e.Execute(t.Context(), Request{Runtime: "bash", Code: "echo hi"}); err == nil {
		t.Fatal("Execute after Stop succeeded")
	}
}

func TestStreamingSetupPhase(t *testing.T) { matrix(t, testStreamingSetupPhase) }

func testStreamingSetupPhase(t *testing.T, b backend) {
	e := b.engine(t, Options{})
	mustHaveImage(t, e, "bash")
	ch, err := e.ExecuteStream(t.Context(), Request{Runtime: "bash", Code: "echo code", SetupScript: "echo s; exit 3"})
	if err != nil {
		t.Fatal(err)
	}
	var got []Event
	for ev := range ch {
		got = append(got, ev)
	}
	want := []Event{
		{Type: EventStdout, Data: "s\n", Phase: PhaseSetup},
		{Type: EventError, Data: "Setup script failed (exit code 3)", Phase: PhaseSetup},
		{Type: EventExit, Data: "3", Phase: PhaseSetup},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events %+v, want %+v", got, want)
	}
	_, err = e.Execute(t.Context(), Request{Runtime: "bash", Code: "echo code", SetupScript: "echo oops >&2; exit 1"})
	if err == nil || err.Error() != "Setup script failed (exit code 1): oops" {
		t.Fatalf("buffered setup failure: %v", err)
	}
}

func TestExecuteAfterContextTimeout(t *testing.T) {
	e := newTestEngine(t, Options{})
	mustHaveImage(t, e, "bash")
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, err := e.Execute(ctx, Request{Runtime: "bash", Code: "sleep 30"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	// The sandbox was reset and can serve again.
	if res := run(t, e, Request{Runtime: "bash", Code: "echo again"}); res.Stdout != "again" {
		t.Fatalf("after cancel: %q", res.Stdout)
	}
}

package server

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/isol8/isol8/driver"
	ctrd "github.com/isol8/isol8/driver/containerd"
	"github.com/isol8/isol8/internal/testenv"
)

// ownContainers lists the isol8 containers this test process made.
func ownContainers(t *testing.T) []string {
	t.Helper()
	ctx := context.Background()
	drv, err := ctrd.New(ctx, ctrd.Config{Address: testenv.MustHaveContainerd(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	ids, err := drv.List(ctx, map[string]string{driver.LabelManaged: "true", driver.LabelPID: strconv.Itoa(os.Getpid())})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// Shutting down cancels work still running when the grace period ends,
// stops sessions and, with the host, removes every sandbox the server made.
func TestShutdownCancelsInFlight(t *testing.T) {
	ts := newTestServer(t, nil)
	done := make(chan response, 1)
	go func() { done <- ts.do("POST", "/execute", testMaster, ex("bash", "sleep 60")) }()
	sess := ex("bash", "echo kept > /sandbox/x")
	sess["sessionId"] = "shutdown-sess"
	ts.do("POST", "/execute", testMaster, sess)
	waitFor(t, func() bool { _, r := ts.srv.queue.depth(); return r == 1 })
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := ts.srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.status == 200 {
			t.Fatalf("the running execution finished normally: %s", r.body)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the running execution was not cancelled")
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Fatalf("shutdown took %s", took)
	}
	if err := ts.host.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if left := ownContainers(t); len(left) > 0 {
		t.Fatalf("left behind: %v", left)
	}
}

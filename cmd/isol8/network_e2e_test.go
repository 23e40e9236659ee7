package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ctrd "github.com/isol8/isol8/driver/containerd"
	"github.com/isol8/isol8/internal/testenv"
	"github.com/isol8/isol8/netns"
)

// `isol8 run --net filtered` reaches a server the test runs on host
// loopback only through the proxy, only when allowed (the operator opened
// private destinations in an explicit config), and with the proxy
// variables set.
func TestE2ENetFiltered(t *testing.T) {
	testenv.MustHaveRoot(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi from host") }))
	defer srv.Close()
	cfg := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(cfg, []byte(`{"network":{"allowPrivateDestinations":true}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code := fmt.Sprintf(`
import os, urllib.request, urllib.error
print(os.environ["HTTP_PROXY"], os.environ["https_proxy"], "NO_PROXY" in os.environ or "no_proxy" in os.environ)
try:
    print(urllib.request.urlopen(%q, timeout=10).read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
`, srv.URL+"/")
	r := runCLI(t, "", "--config", cfg, "run", "--no-stream", "--net", "filtered", "--allow", `^127\.0\.0\.1$`, "-e", code)
	want := "http://127.0.0.1:8118 http://127.0.0.1:8118 False\nhi from host\n"
	if r.code != 0 || r.stdout != want || r.stderr != "[WARN] Sandbox weakened: filtered network may reach private addresses\n" {
		t.Fatalf("allowed: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, "", "--config", cfg, "run", "--no-stream", "--net", "filtered", "--allow", `^127\.0\.0\.1$`, "--deny", `127`, "-e", code)
	if r.code != 0 || !strings.HasSuffix(r.stdout, "403 isol8: request to 127.0.0.1 blocked by network filter\n") {
		t.Fatalf("denied: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	// Without the operator's switch the guard refuses host loopback.
	r = runCLI(t, "", "run", "--no-stream", "--net", "filtered", "-e", code)
	if r.code != 0 || !strings.Contains(r.stdout, "403 isol8: request to 127.0.0.1 blocked: private destination (loopback) not allowed\n") {
		t.Fatalf("guarded: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	// --log-network prints the proxy's log after the output.
	r = runCLI(t, "", "--config", cfg, "run", "--no-stream", "--net", "filtered", "--deny", `^127\.0\.0\.1$`, "--log-network", "-e", code)
	wantLog := "\n--- Network Logs ---\n{\"timestamp\":"
	if r.code != 0 || !strings.Contains(r.stderr, wantLog) ||
		!strings.Contains(r.stderr, `"method":"GET","host":"127.0.0.1","path":"/","action":"BLOCK","rule":"blacklist:^127\\.0\\.0\\.1$","status":403`) {
		t.Fatalf("log-network: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	// The spec's checklist command.
	r = runCLI(t, "", "run", "-e", "print(7)", "-r", "python", "--net", "filtered", "--allow", `example\.com`, "--deny", `evil\.com`, "--no-stream")
	if r.code != 0 || r.stdout != "7\n" {
		t.Fatalf("checklist: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

// After a crash (the engine SIGKILLed mid-run) a filtered sandbox leaves
// its container and its namespace pin, and no listener: the proxy's socket
// died with the process. Cleanup's steps (remove the container, prune
// orphans) remove the pin.
func TestE2ENetFilteredCrashLeavesNoListener(t *testing.T) {
	testenv.MustHaveRoot(t)
	cmd := isol8Cmd(t, "", "run", "--net", "filtered", "-e", "import time; print('up', flush=True); time.sleep(120)")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "up\n" {
		cmd.Process.Kill()
		t.Fatalf("first line %q %v", line, err)
	}
	ids := containersOf(t, cmd.Process.Pid)
	if len(ids) != 1 {
		cmd.Process.Kill()
		t.Fatalf("containers of the run: %v", ids)
	}
	pin := ctrd.NetNSPinPath(ids[0])
	drv, err := ctrd.New(t.Context(), ctrd.Config{Address: testenv.MustHaveContainerd(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	t.Cleanup(func() { _ = drv.Remove(context.Background(), ids[0]) })
	dialProxy := func() error {
		return netns.Do(pin, func() error {
			c, err := net.DialTimeout("tcp", "127.0.0.1:8118", 2*time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
	}
	if err := dialProxy(); err != nil {
		t.Fatalf("the proxy does not listen while the run lives: %v", err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if _, err := os.Stat(pin); err != nil {
		t.Fatalf("pin of the crashed run: %v (expected it to be left for cleanup)", err)
	}
	if err := dialProxy(); err == nil {
		t.Fatal("something still listens on 127.0.0.1:8118 in the crashed run's namespace")
	}
	if err := drv.Remove(t.Context(), ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := drv.Prune(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(pin); !os.IsNotExist(err) {
		t.Fatalf("pin left after cleanup: %v", err)
	}
}

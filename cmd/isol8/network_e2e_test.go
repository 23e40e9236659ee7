package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/isol8/isol8/internal/testenv"
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

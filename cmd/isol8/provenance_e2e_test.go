package main

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/isol8/isol8/internal/testenv"
)

// TestE2ERemoteCodeAndAudit: the real binary fetches code from a loopback
// server (the explicit config opens the guard and allows http), runs it
// when the hash matches, refuses a mismatch, and `isol8 audit query` reads
// both records back.
func TestE2ERemoteCodeAndAudit(t *testing.T) {
	testenv.MustHaveRoot(t)
	const code = "print('fetched and run')\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(code)) }))
	defer srv.Close()
	sum := sha256.Sum256([]byte(code))
	hash := hex.EncodeToString(sum[:])
	auditDir := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "isol8.json")
	doc := `{"remoteCode":{"enabled":true,"allowedSchemes":["http","https"],"blockedHosts":[]},
		"network":{"allowPrivateDestinations":true},
		"audit":{"enabled":true,"logDir":"` + auditDir + `"}}`
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "", "--config", cfg, "run", "--url", srv.URL+"/x.py", "--hash", hash, "--allow-insecure-code-url")
	if r.code != 0 || r.stdout != "fetched and run\n" {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	bad := strings.Repeat("0", 64)
	r = runCLI(t, "", "--config", cfg, "run", "--url", srv.URL+"/x.py", "--hash", bad, "--allow-insecure-code-url")
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "[ERR] Remote code hash mismatch: expected "+bad+", got "+hash) {
		t.Fatalf("mismatch: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, "", "--config", cfg, "run", "--url", srv.URL+"/x.py")
	if r.code != 1 || !strings.Contains(r.stderr, "[ERR] Insecure code URL blocked. Use allowInsecureCodeUrl=true to allow HTTP.") {
		t.Fatalf("http: exit %d stderr %q", r.code, r.stderr)
	}
	r = runCLI(t, "", "--config", cfg, "audit", "query", "--json")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 3 || !strings.Contains(r.stdout, `"outcome":"success"`) ||
		!strings.Contains(r.stdout, `"codeHash":"`+hash+`"`) || !strings.Contains(r.stdout, "hash mismatch") {
		t.Fatalf("audit query: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/isol8/isol8"
	"github.com/isol8/isol8/audit"
	"github.com/isol8/isol8/config"
	"github.com/isol8/isol8/engine"
	"github.com/isol8/isol8/internal/testenv"
	"github.com/isol8/isol8/remotecode"
)

// The operator's remote-code policy and audit log hold for server
// requests: a tenant's codeUrl request runs under the host's policy, and
// its audit record names the tenant and key prefix (never the key), the
// request id and the URL with its hash. Before, the server put no caller
// into the request's context, so records named no tenant.
func TestServerRemoteCodeAndAudit(t *testing.T) {
	code := "print('from a url')\n"
	sum := sha256.Sum256([]byte(code))
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(code)) }))
	t.Cleanup(origin.Close)

	dir := t.TempDir()
	auditLog, err := audit.New(audit.Config{Destination: "filesystem", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	policy := remotecode.Policy{Enabled: true, AllowedSchemes: []string{"http", "https"}, MaxCodeSize: 1 << 20, FetchTimeout: 10 * time.Second}
	addr := testenv.MustHaveContainerd(t)
	h, err := engine.NewHost(engine.HostOptions{
		NewDriver: isol8.ContainerdDriver(engine.ContainerdOptions{Address: addr}),
		InitPath:  testenv.InitBinary(t), MaxConcurrent: 4,
		RemoteCode: &policy, AllowPrivateDestinations: true, Audit: auditLog,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Stop(context.Background()) })
	ts := serveOn(t, Options{Host: h, MasterKey: testMaster, Config: config.Defaults(), Audit: auditLog}, withKeys(t))

	created := ts.do("POST", "/auth/keys", testMaster, map[string]any{"name": "prov", "tenantId": "tenant-p"}).json(t)
	key := created["key"].(string)
	req := map[string]any{"request": map[string]any{"runtime": "python", "codeUrl": origin.URL + "/job.py", "codeHash": hex.EncodeToString(sum[:]), "allowInsecureCodeUrl": true}}
	if r := ts.do("POST", "/execute", key, req); r.status != 200 || r.json(t)["stdout"] != "from a url" {
		t.Fatalf("codeUrl through the server: %d %s", r.status, r.body)
	}
	// A wrong hash runs nothing.
	req["request"].(map[string]any)["codeHash"] = strings.Repeat("0", 64)
	if r := ts.do("POST", "/execute", key, req); r.status < 400 || !strings.Contains(string(r.body), "hash mismatch") {
		t.Fatalf("wrong hash: %d %s", r.status, r.body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := auditLog.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var recs []*audit.Record
	if _, err := audit.Read(dir, audit.Filter{Tenant: "tenant-p"}, func(r *audit.Record) bool { recs = append(recs, r); return true }); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("audit records of tenant-p: %d, want 2", len(recs))
	}
	r := recs[0]
	if r.KeyPrefix != created["keyPrefix"] || r.RequestID == "" || r.Source == nil || r.Source.URL != origin.URL+"/job.py" || r.Outcome != "success" {
		t.Errorf("record: %+v source %+v", r, r.Source)
	}
	if recs[1].Outcome != "error" {
		t.Errorf("mismatch record outcome %q, want error", recs[1].Outcome)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		if data, err := os.ReadFile(f); err == nil && strings.Contains(string(data), key) {
			t.Errorf("the API key appears in the audit log %s", f)
		}
	}
}

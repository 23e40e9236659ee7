// Package deptest keeps the package arrows of the architecture: what may
// import what. It asks `go list -deps` (as tailscale's tstest/deptest does),
// so a forbidden import anywhere in a package's closure fails the build's
// tests, not a review.
package deptest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/isol8/isol8/internal/testenv"
)

const module = "github.com/isol8/isol8"

type listed struct {
	ImportPath string
	Standard   bool
	Deps       []string
	CgoFiles   []string
}

// deps returns the import paths a package depends on, transitively, and
// whether any of them (or the package) uses cgo.
func deps(t *testing.T, pkg string) (all []string, cgo []string) {
	t.Helper()
	cmd := exec.Command(testenv.GoTool(), "list", "-deps", "-json", pkg)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pkg, err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listed
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if p.ImportPath != pkg {
			all = append(all, p.ImportPath)
		}
		if len(p.CgoFiles) > 0 {
			cgo = append(cgo, p.ImportPath)
		}
	}
	return all, cgo
}

// TestLeafPackages: the public API types and the agent protocol import only
// the standard library and no cgo, so a remote client built on them stays
// light (no containerd, gRPC or libseccomp); the runtime adapters import
// nothing else but those two.
func TestLeafPackages(t *testing.T) {
	leaves := map[string]bool{module + "/api": true, module + "/agent": true}
	for _, pkg := range []string{module + "/api", module + "/agent", module + "/runtimes"} {
		all, cgo := deps(t, pkg)
		for _, d := range all {
			if leaves[d] {
				continue // runtimes may use the leaf packages
			}
			if d == "C" || strings.Contains(strings.SplitN(d, "/", 2)[0], ".") {
				t.Errorf("%s imports non-standard package %s", pkg, d)
			}
		}
		if len(cgo) > 0 {
			t.Errorf("%s pulls in cgo through %v", pkg, cgo)
		}
	}
}

// TestForbiddenArrows lists imports the architecture forbids.
func TestForbiddenArrows(t *testing.T) {
	for _, rule := range []struct {
		pkg, forbidden, why string
	}{
		{module + "/config", module + "/engine", "config is read by everyone and imports no other isol8 package"},
		{module + "/runtimes", module + "/driver", "runtime adapters know nothing of backends"},
		{module + "/oci", module + "/driver", "specs are built without a backend"},
		{module + "/seccomp", module + "/driver", "profiles are built without a backend"},
		{module + "/engine", module + "/driver/containerd", "the engine knows backends only through driver.Driver, injected where the process is wired"},
		{module + "/image", "github.com/containerd/containerd/v2/client", "the image builder writes OCI layouts a driver imports"},
		{module + "/image", module + "/driver/containerd", "the image builder knows no backend"},
		{module + "/engine", module + "/driver/docker", "the engine knows backends only through driver.Driver, injected where the process is wired"},
		{module + "/image", module + "/driver/docker", "the image builder knows no backend"},
		{module + "/client", "github.com/containerd", "the remote client stays light: no container code"},
		{module + "/client", module + "/engine", "the remote client speaks HTTP, not the engine"},
		{module + "/client", module + "/driver", "the remote client knows no backend"},
		{module + "/client", "github.com/seccomp", "the remote client needs no libseccomp"},
	} {
		all, _ := deps(t, rule.pkg)
		for _, d := range all {
			if d == rule.forbidden || strings.HasPrefix(d, rule.forbidden+"/") {
				t.Errorf("%s imports %s: %s", rule.pkg, d, rule.why)
			}
		}
	}
}

// imports returns the packages pkg imports directly.
func imports(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command(testenv.GoTool(), "list", "-f", "{{join .Imports \"\\n\"}}", pkg).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// TestCLIUsesPublicAPI: the CLI reaches sandboxes only through package
// isol8's interfaces (Engine, Admin), never a driver, so a remote
// implementation can take the local one's place. The local engine's
// containerd driver is wired in by isol8.New and isol8.NewHost.
func TestCLIUsesPublicAPI(t *testing.T) {
	pkg := module + "/cmd/isol8"
	for _, d := range imports(t, pkg) {
		if d == module+"/driver" || strings.HasPrefix(d, module+"/driver/") {
			t.Errorf("%s imports %s: the CLI talks to an isol8.Engine or isol8.Admin, not a driver", pkg, d)
		}
		if strings.HasPrefix(d, "github.com/containerd/containerd") {
			t.Errorf("%s imports %s: the CLI knows no backend", pkg, d)
		}
	}
}

// TestAuthStoreIsPureGo: the API key store, SQLite driver included, uses
// no cgo outside the standard library (so it never needs libsqlite3 or a C
// toolchain), and knows nothing of sandboxes or backends.
func TestAuthStoreIsPureGo(t *testing.T) {
	pkg := module + "/auth"
	all, cgo := deps(t, pkg)
	for _, p := range cgo {
		if strings.Contains(strings.SplitN(p, "/", 2)[0], ".") {
			t.Errorf("%s pulls in cgo through %s", pkg, p)
		}
	}
	for _, d := range all {
		for _, bad := range []string{module + "/engine", module + "/driver", module + "/oci", "github.com/containerd/"} {
			if d == bad || strings.HasPrefix(d, strings.TrimSuffix(bad, "/")+"/") {
				t.Errorf("%s imports %s: the key store knows nothing of sandboxes", pkg, d)
			}
		}
	}
}

package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

// TestTrust: a config file in the working directory (say, a cloned
// repository) cannot weaken the sandbox or pick a host binary; the home file
// can when it is owned by root or the invoking user and nobody else can
// write it; an explicit --config file always can.
func TestTrust(t *testing.T) {
	weakening := map[string]string{
		"containerd.runtime":         `{"containerd":{"runtime":"/tmp/evil"}}`,
		"containerd.address":         `{"containerd":{"address":"/tmp/evil.sock"}}`,
		"security.seccomp":           `{"security":{"seccomp":"unconfined"}}`,
		"security.customProfilePath": `{"security":{"seccomp":"custom","customProfilePath":"/tmp/p.json"}}`,
		"defaults.network":           `{"defaults":{"network":"host"}}`,
		"security.userns":            `{"security":{"userns":{"base":2000000}}}`,
		"defaults.readonlyRootFs":    `{"defaults":{"readonlyRootFs":false}}`,
		"images.registry":            `{"images":{"registry":{"python":"m.local/p@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}}}`,
		"driver":                     `{"driver":"docker"}`,
	}
	// Opens the SSRF guard of host-side fetches to internal addresses.
	weakening["network.allowPrivateDestinations"] = `{"network":{"allowPrivateDestinations":true}}`
	// Where root writes the audit log, and what it runs after a record.
	weakening["audit.logDir"] = `{"audit":{"logDir":"/etc/logrotate.d"}}`
	weakening["audit.postLogScript"] = `{"audit":{"postLogScript":"/tmp/evil.sh"}}`
	harmless := []string{
		`{"security":{"seccomp":"strict"},"containerd":{"runtime":"runc"},"defaults":{"network":"none","readonlyRootFs":true}}`,
		`{"maxConcurrent":3,"defaults":{"memoryLimit":"1g"}}`,
		`{"images":{"source":"registry"}}`,
		`{"driver":"containerd"}`,
		`{"network":{"allowPrivateDestinations":false,"whitelist":["a"]}}`,
	}
	uid := os.Getuid()

	for key, doc := range weakening {
		t.Run("workdir "+key, func(t *testing.T) {
			_, cwd, _, err := loadWith(t, doc, "")
			path := filepath.Join(cwd, CwdFile)
			if err == nil {
				t.Fatal("a working-directory file weakened the sandbox")
			}
			prefix := "Untrusted config file " + path + ": "
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), `"`+key+`"`) ||
				!strings.Contains(err.Error(), "the sandbox; ") || !strings.Contains(err.Error(), "--config PATH") {
				t.Fatalf("error = %q, want prefix %q, the key %q and the --config fix", err, prefix, key)
			}
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("error %q is not invalid-argument", err)
			}
		})
		t.Run("home owned and private "+key, func(t *testing.T) {
			if _, _, _, err := loadWith(t, "", doc); err != nil {
				t.Fatalf("trusted home file refused: %v", err)
			}
		})
		t.Run("explicit "+key, func(t *testing.T) {
			c, _, err := loadExplicit(t, doc)
			if err != nil {
				t.Fatalf("explicit file refused: %v", err)
			}
			if got := c.Weakening(); !slices.Contains(got, key) {
				t.Fatalf("Weakening() = %v, want it to contain %s", got, key)
			}
		})
	}
	for _, doc := range harmless {
		if _, _, _, err := loadWith(t, doc, ""); err != nil {
			t.Errorf("harmless workdir file %s refused: %v", doc, err)
		}
	}

	t.Run("home writable by others", func(t *testing.T) {
		home := t.TempDir()
		path := filepath.Join(home, ".isol8", "config.json")
		writeFile(t, path, weakening["security.seccomp"])
		if err := os.Chmod(path, 0o666); err != nil {
			t.Fatal(err)
		}
		_, err := Load(t.TempDir(), home, uid)
		if err == nil || !strings.Contains(err.Error(), "mode 0666") || !strings.Contains(err.Error(), path) {
			t.Fatalf("error = %v, want a refusal naming %s and its mode", err, path)
		}
	})
	t.Run("home owned by another user", func(t *testing.T) {
		home := t.TempDir()
		path := filepath.Join(home, ".isol8", "config.json")
		writeFile(t, path, weakening["containerd.runtime"])
		// Judged as if a different user invoked isol8: the file's owner
		// (this process) is then neither root nor the invoking user,
		// unless this process is root, whose files are always trusted.
		other := uid + 4242
		_, err := Load(t.TempDir(), home, other)
		if uid == 0 {
			if err != nil {
				t.Fatalf("root-owned home file refused: %v", err)
			}
			if err := os.Chown(path, 4242, 4242); err != nil {
				t.Fatal(err)
			}
			_, err = Load(t.TempDir(), home, 0)
		}
		if err == nil || !strings.Contains(err.Error(), "\"containerd.runtime\"") || !strings.Contains(err.Error(), "owner uid") {
			t.Fatalf("error = %v, want a refusal naming the key and the owner", err)
		}
	})
}

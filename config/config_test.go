package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// loadWith writes content (if non-empty) to <cwd>/isol8.config.json and
// home (if non-empty) to <home>/.isol8/config.json, then calls Load.
func loadWith(t *testing.T, cwdContent, homeContent string) (c *Config, cwd, home string, err error) {
	t.Helper()
	cwd, home = t.TempDir(), t.TempDir()
	if cwdContent != "" {
		writeFile(t, filepath.Join(cwd, "isol8.config.json"), cwdContent)
	}
	if homeContent != "" {
		writeFile(t, filepath.Join(home, ".isol8", "config.json"), homeContent)
	}
	c, err = Load(cwd, home, os.Getuid())
	return c, cwd, home, err
}

// loadExplicit writes content to a file and loads it as `--config` does.
func loadExplicit(t *testing.T, content string) (*Config, string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "explicit.json")
	writeFile(t, path, content)
	c, err := LoadFile(path)
	return c, path, err
}

// asMap renders the config as `config --json` does and decodes it.
func asMap(t *testing.T, c *Config) map[string]any {
	t.Helper()
	data, err := c.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("JSON() is not valid JSON: %v\n%s", err, data)
	}
	return m
}

// get walks a dotted path through decoded JSON.
func get(m map[string]any, key string) any {
	var v any = m
	for _, part := range strings.Split(key, ".") {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[part]
	}
	return v
}

func jsonValue(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad test JSON %q: %v", s, err)
	}
	return v
}

// Item 24: `config --json` without a file.
func TestDefaultsJSON(t *testing.T) {
	c, _, _, err := loadWith(t, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Path() != "" {
		t.Fatalf("Path() = %q without a file", c.Path())
	}
	want := `{
  "maxConcurrent": 10,
  "defaults": {"timeoutMs": 30000, "memoryLimit": "512m", "cpuLimit": 1, "network": "none",
               "sandboxSize": "512m", "tmpSize": "256m", "readonlyRootFs": true},
  "network": {"whitelist": [], "blacklist": []},
  "cleanup": {"autoPrune": true, "maxContainerAgeMs": 3600000},
  "poolStrategy": "fast",
  "poolSize": {"clean": 1, "dirty": 1},
  "security": {"seccomp": "strict"},
  "remoteCode": {
    "enabled": false,
    "allowedSchemes": ["https"],
    "allowedHosts": [],
    "blockedHosts": [
      "^localhost$",
      "^127(?:\\.[0-9]{1,3}){3}$",
      "^\\[::1\\]$",
      "^::1$",
      "^10(?:\\.[0-9]{1,3}){3}$",
      "^172\\.(?:1[6-9]|2[0-9]|3[0-1])(?:\\.[0-9]{1,3}){2}$",
      "^192\\.168(?:\\.[0-9]{1,3}){2}$",
      "^169\\.254(?:\\.[0-9]{1,3}){2}$",
      "^metadata\\.google\\.internal$",
      "^169\\.254\\.169\\.254$"
    ],
    "maxCodeSize": 10485760,
    "fetchTimeoutMs": 30000,
    "requireHash": false,
    "enableCache": true,
    "cacheTtl": 3600
  },
  "audit": {"enabled": false, "destination": "filesystem", "trackResources": true, "retentionDays": 90,
            "includeCode": false, "includeOutput": false},
  "auth": {"enabled": false, "defaultTtlMs": 86400000, "cleanupIntervalMs": 3600000},
  "debug": false,
  "prebuiltImages": [],
  "containerd": {"runtime": "runc"},
  "images": {"source": "build"},
  "server": {"allowClientOverrides": true, "maxQueue": 100, "queueTimeoutMs": 60000,
             "maxBodyBytes": 33554432, "maxSessions": 1000, "prewarm": []}
}`
	if got := asMap(t, c); !reflect.DeepEqual(got, jsonValue(t, want)) {
		data, _ := c.JSON()
		t.Fatalf("defaults JSON mismatch:\n%s", data)
	}
	data, _ := c.JSON()
	if !strings.HasPrefix(string(data), "{\n  \"maxConcurrent\": 10,\n  \"defaults\": {\n    \"timeoutMs\"") {
		t.Fatalf("JSON() is not 2-space indented:\n%s", data)
	}
	if strings.HasSuffix(string(data), "\n") {
		t.Fatal("JSON() ends with a newline")
	}
	if d := Defaults(); !reflect.DeepEqual(d, c) {
		t.Fatal("Load without a file differs from Defaults()")
	}
}

// Items 25–28, 31 and hostile inputs: one file in the working directory.
func TestLoadMerge(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		want    map[string]string // dotted key → JSON value in `config --json`
		absent  []string          // dotted keys that must not appear
		wantErr string            // reason after "Invalid config file <path>: "
	}{
		{
			name: "item 25 defaults shallow merge",
			file: `{"defaults":{"timeoutMs":60000,"memoryLimit":"1g"}}`,
			want: map[string]string{"defaults.timeoutMs": "60000", "defaults.memoryLimit": `"1g"`,
				"defaults.cpuLimit": "1", "defaults.network": `"none"`, "defaults.readonlyRootFs": "true"},
		},
		{
			name: "item 26 cleanup keeps age",
			file: `{"cleanup":{"autoPrune":false}}`,
			want: map[string]string{"cleanup.autoPrune": "false", "cleanup.maxContainerAgeMs": "3600000"},
		},
		{name: "item 26 debug", file: `{"debug":true}`, want: map[string]string{"debug": "true"}},
		{
			name: "item 26 maxConcurrent",
			file: `{"maxConcurrent":3}`,
			want: map[string]string{"maxConcurrent": "3", "cleanup.autoPrune": "true", "debug": "false"},
		},
		{
			name: "item 27 remoteCode shallow merge",
			file: `{"remoteCode":{"enabled":true,"allowedHosts":["^raw\\.githubusercontent\\.com$"],"requireHash":true}}`,
			want: map[string]string{"remoteCode.enabled": "true", "remoteCode.requireHash": "true",
				"remoteCode.allowedHosts":   `["^raw\\.githubusercontent\\.com$"]`,
				"remoteCode.allowedSchemes": `["https"]`, "remoteCode.maxCodeSize": "10485760"},
		},
		{
			name: "blockedHosts replaced not merged",
			file: `{"remoteCode":{"blockedHosts":["^evil$"]}}`,
			want: map[string]string{"remoteCode.blockedHosts": `["^evil$"]`},
		},
		{
			name: "item 28 pool and sections verbatim",
			file: `{"poolStrategy":"secure","poolSize":3,"network":{"whitelist":["^a$"],"blacklist":["b"]},` +
				`"cleanup":{"autoPrune":false,"maxContainerAgeMs":5000}}`,
			want: map[string]string{"poolStrategy": `"secure"`, "poolSize": "3",
				"network.whitelist": `["^a$"]`, "network.blacklist": `["b"]`,
				"cleanup.autoPrune": "false", "cleanup.maxContainerAgeMs": "5000"},
		},
		{
			name: "network whitelist alone keeps blacklist",
			file: `{"network":{"whitelist":["x"]}}`,
			want: map[string]string{"network.whitelist": `["x"]`, "network.blacklist": `[]`},
		},
		{name: "poolSize object", file: `{"poolSize":{"clean":2,"dirty":5}}`, want: map[string]string{"poolSize": `{"clean":2,"dirty":5}`}},
		{name: "poolSize partial object", file: `{"poolSize":{"dirty":0}}`, want: map[string]string{"poolSize": `{"clean":1,"dirty":0}`}},
		{name: "poolSize zero", file: `{"poolSize":0}`, want: map[string]string{"poolSize": "0"}},
		{
			name:   "item 31 unknown top-level keys dropped",
			file:   `{"dependencies":{"python":["numpy"]},"$schema":"./schema.json","somethingElse":1}`,
			absent: []string{"dependencies", "$schema", "somethingElse"},
			want:   map[string]string{"maxConcurrent": "10"},
		},
		{
			name:   "unknown nested keys ignored",
			file:   `{"defaults":{"bogus":1},"audit":{"nope":true},"containerd":{"x":1}}`,
			absent: []string{"defaults.bogus", "audit.nope", "containerd.x"},
			want:   map[string]string{"defaults.timeoutMs": "30000"},
		},
		{
			name: "null values mean default",
			file: `{"maxConcurrent":null,"debug":null,"poolSize":null,"defaults":{"timeoutMs":null,"memoryLimit":null},` +
				`"network":null,"remoteCode":{"blockedHosts":null},"prebuiltImages":null,"security":{"seccomp":null}}`,
			want: map[string]string{"maxConcurrent": "10", "debug": "false", "poolSize": `{"clean":1,"dirty":1}`,
				"defaults.timeoutMs": "30000", "defaults.memoryLimit": `"512m"`, "network.whitelist": "[]",
				"prebuiltImages": "[]", "security.seccomp": `"strict"`},
		},
		{name: "empty object", file: `{}`, want: map[string]string{"maxConcurrent": "10"}},
		{name: "integral float accepted", file: `{"defaults":{"timeoutMs":3e4}}`, want: map[string]string{"defaults.timeoutMs": "30000"}},
		{name: "utf8 bom", file: "\ufeff{\"debug\":true}", want: map[string]string{"debug": "true"}},
		{
			name: "security and optional strings",
			file: `{"security":{"seccomp":"custom","customProfilePath":"/p.json"},"audit":{"logDir":"/var/log/x","destination":"stdout"},` +
				`"auth":{"connectionString":"postgres://u@h/db"}}`,
			want: map[string]string{"security.seccomp": `"custom"`, "security.customProfilePath": `"/p.json"`,
				"audit.logDir": `"/var/log/x"`, "audit.destination": `"stdout"`, "audit.retentionDays": "90",
				"auth.connectionString": `"postgres://u@h/db"`, "auth.defaultTtlMs": "86400000"},
		},
		{
			name: "prebuiltImages",
			file: `{"prebuiltImages":[{"tag":"my:py","runtime":"python","installPackages":["numpy"],"setupScript":"echo hi"},{"tag":"t2","runtime":"node"}]}`,
			want: map[string]string{"prebuiltImages": `[{"tag":"my:py","runtime":"python","installPackages":["numpy"],"setupScript":"echo hi"},` +
				`{"tag":"t2","runtime":"node","installPackages":[]}]`},
		},
		{
			name: "containerd section",
			file: `{"containerd":{"address":"/run/x.sock","runtime":"crun"}}`,
			want: map[string]string{"containerd": `{"address":"/run/x.sock","runtime":"crun"}`},
		},
		{name: "html chars not escaped", file: `{"network":{"whitelist":["a<b>&c"]}}`, want: map[string]string{"network.whitelist": `["a<b>&c"]`}},

		// Hostile and invalid input.
		{name: "item 31 invalid JSON", file: `{"debug": tru`, wantErr: "unexpected EOF"},
		{name: "syntax error position", file: "{\n  \"debug\": yes\n}", wantErr: "invalid character 'y' looking for beginning of value (line 2, column 12)"},
		{name: "trailing comma", file: `{"debug": true,}`, wantErr: "invalid character"},
		{name: "trailing data", file: `{"debug": true} {}`, wantErr: "unexpected data after the top-level JSON value"},
		{name: "empty file", file: " ", wantErr: "unexpected end of JSON input"},
		{name: "top-level array", file: `[1,2]`, wantErr: "top level must be a JSON object"},
		{name: "top-level string", file: `"hi"`, wantErr: "top level must be a JSON object"},
		{name: "top-level null", file: `null`, wantErr: "top level must be a JSON object"},
		{name: "top-level number", file: `42`, wantErr: "top level must be a JSON object"},
		{name: "timeout string", file: `{"defaults":{"timeoutMs":"30000"}}`, wantErr: "defaults.timeoutMs must be a number"},
		{name: "timeout fractional", file: `{"defaults":{"timeoutMs":1.5}}`, wantErr: "defaults.timeoutMs must be an integer"},
		{name: "timeout zero", file: `{"defaults":{"timeoutMs":0}}`, wantErr: "defaults.timeoutMs must be >= 1"},
		{name: "timeout negative", file: `{"defaults":{"timeoutMs":-5}}`, wantErr: "defaults.timeoutMs must be >= 1"},
		{name: "timeout huge", file: `{"defaults":{"timeoutMs":1e300}}`, wantErr: "defaults.timeoutMs is out of range"},
		{name: "timeout overflow float", file: `{"defaults":{"timeoutMs":1e999}}`, wantErr: "defaults.timeoutMs is out of range"},
		{name: "timeout beyond duration", file: `{"defaults":{"timeoutMs":9000000000000000}}`, wantErr: "defaults.timeoutMs is too large"},
		{name: "maxConcurrent zero", file: `{"maxConcurrent":0}`, wantErr: "maxConcurrent must be >= 1"},
		{name: "maxConcurrent negative", file: `{"maxConcurrent":-1}`, wantErr: "maxConcurrent must be >= 1"},
		{name: "maxConcurrent bool", file: `{"maxConcurrent":true}`, wantErr: "maxConcurrent must be a number"},
		{name: "maxConcurrent huge", file: `{"maxConcurrent":18446744073709551616}`, wantErr: "maxConcurrent is out of range"},
		{name: "cpu zero", file: `{"defaults":{"cpuLimit":0}}`, wantErr: "defaults.cpuLimit must be > 0"},
		{name: "cpu negative", file: `{"defaults":{"cpuLimit":-0.5}}`, wantErr: "defaults.cpuLimit must be > 0"},
		{name: "cpu huge", file: `{"defaults":{"cpuLimit":1e12}}`, wantErr: "defaults.cpuLimit is too large"},
		{name: "cpu string", file: `{"defaults":{"cpuLimit":"1"}}`, wantErr: "defaults.cpuLimit must be a number"},
		{name: "network bad", file: `{"defaults":{"network":"bridge"}}`, wantErr: `defaults.network must be one of none, host, filtered (got "bridge")`},
		{name: "network case", file: `{"defaults":{"network":"None"}}`, wantErr: "defaults.network must be one of"},
		{name: "poolStrategy bad", file: `{"poolStrategy":"lazy"}`, wantErr: `poolStrategy must be one of fast, secure (got "lazy")`},
		{name: "seccomp bad", file: `{"security":{"seccomp":"safety"}}`, wantErr: `security.seccomp must be one of strict, unconfined, custom (got "safety")`},
		{name: "seccomp path", file: `{"security":{"seccomp":"/etc/profile.json"}}`, wantErr: "security.seccomp must be one of"},
		{name: "memory bad", file: `{"defaults":{"memoryLimit":"lots"}}`, wantErr: `defaults.memoryLimit: Invalid memory limit format: "lots". Use e.g. "512m", "1g".`},
		{name: "memory zero", file: `{"defaults":{"memoryLimit":"0m"}}`, wantErr: "defaults.memoryLimit must be greater than 0"},
		{name: "memory number", file: `{"defaults":{"memoryLimit":512}}`, wantErr: "defaults.memoryLimit must be a string"},
		{name: "memory huge", file: `{"defaults":{"memoryLimit":"99999999999t"}}`, wantErr: "defaults.memoryLimit: Memory limit too large"},
		{name: "sandboxSize bad", file: `{"defaults":{"sandboxSize":"-1g"}}`, wantErr: "defaults.sandboxSize: Invalid memory limit format"},
		{name: "tmpSize bad", file: `{"defaults":{"tmpSize":"1 gigabyte"}}`, wantErr: "defaults.tmpSize: Invalid memory limit format"},
		{name: "defaults not object", file: `{"defaults":"fast"}`, wantErr: "defaults must be an object"},
		{name: "network not object", file: `{"network":"none"}`, wantErr: "network must be an object"},
		{name: "whitelist string", file: `{"network":{"whitelist":"^a$"}}`, wantErr: "network.whitelist must be an array of strings"},
		{name: "whitelist number item", file: `{"network":{"whitelist":["a",1]}}`, wantErr: "network.whitelist[1] must be a string"},
		{name: "whitelist null item", file: `{"network":{"whitelist":[null]}}`, wantErr: "network.whitelist[0] must be a string"},
		{name: "whitelist bad regex", file: `{"network":{"whitelist":["(unclosed"]}}`, wantErr: `network.whitelist[0]: invalid pattern "(unclosed"`},
		{name: "blacklist lookahead", file: `{"network":{"blacklist":["ok","^(?!x)"]}}`, wantErr: `network.blacklist[1]: invalid pattern "^(?!x)"`},
		{name: "blockedHosts bad regex", file: `{"remoteCode":{"blockedHosts":["[z-a]"]}}`, wantErr: `remoteCode.blockedHosts[0]: invalid pattern "[z-a]"`},
		{name: "allowedHosts bad regex", file: `{"remoteCode":{"allowedHosts":["a{2,1}"]}}`, wantErr: `remoteCode.allowedHosts[0]: invalid pattern`},
		{name: "remoteCode enabled string", file: `{"remoteCode":{"enabled":"yes"}}`, wantErr: "remoteCode.enabled must be a boolean"},
		{name: "fetchTimeout zero", file: `{"remoteCode":{"fetchTimeoutMs":0}}`, wantErr: "remoteCode.fetchTimeoutMs must be >= 1"},
		{name: "maxCodeSize negative", file: `{"remoteCode":{"maxCodeSize":-1}}`, wantErr: "remoteCode.maxCodeSize must be >= 0"},
		{name: "poolSize negative", file: `{"poolSize":-1}`, wantErr: "poolSize.clean must be >= 0"},
		{name: "poolSize string", file: `{"poolSize":"3"}`, wantErr: "poolSize must be a number or an object"},
		{name: "poolSize bad member", file: `{"poolSize":{"clean":"x"}}`, wantErr: "poolSize.clean must be a number"},
		{name: "poolSize fractional", file: `{"poolSize":1.5}`, wantErr: "poolSize must be an integer"},
		{name: "debug string", file: `{"debug":"true"}`, wantErr: "debug must be a boolean"},
		{name: "schema number", file: `{"$schema":1}`, wantErr: "$schema must be a string"},
		{name: "cleanup age negative", file: `{"cleanup":{"maxContainerAgeMs":-1}}`, wantErr: "cleanup.maxContainerAgeMs must be >= 0"},
		{name: "retention negative", file: `{"audit":{"retentionDays":-3}}`, wantErr: "audit.retentionDays must be >= 0"},
		{name: "auth ttl zero", file: `{"auth":{"defaultTtlMs":0}}`, wantErr: "auth.defaultTtlMs must be >= 1"},
		{name: "prebuiltImages object", file: `{"prebuiltImages":{}}`, wantErr: "prebuiltImages must be an array"},
		{name: "prebuiltImages item", file: `{"prebuiltImages":["x"]}`, wantErr: "prebuiltImages[0] must be an object"},
		{name: "prebuiltImages no tag", file: `{"prebuiltImages":[{"runtime":"python"}]}`, wantErr: "prebuiltImages[0].tag is required"},
		{name: "prebuiltImages no runtime", file: `{"prebuiltImages":[{"tag":"t"}]}`, wantErr: "prebuiltImages[0].runtime is required"},
		{name: "prebuiltImages pkgs", file: `{"prebuiltImages":[{"tag":"t","runtime":"python","installPackages":"numpy"}]}`, wantErr: "prebuiltImages[0].installPackages must be an array of strings"},
		{name: "containerd runtime empty", file: `{"containerd":{"runtime":""}}`, wantErr: "containerd.runtime must not be empty"},
		{name: "driver unknown", file: `{"driver":"podman"}`, wantErr: "driver must be one of"},
		{name: "containerd not object", file: `{"containerd":"/run/containerd.sock"}`, wantErr: "containerd must be an object"},
		{name: "images source", file: `{"images":{"source":"docker"}}`, wantErr: "images.source"},
		{name: "images registry not object", file: `{"images":{"registry":["a"]}}`, wantErr: "images.registry must be an object"},
		{name: "images registry value", file: `{"images":{"registry":{"python":1}}}`, wantErr: "images.registry.python must be a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// An explicit file: merging is the same for every origin, and
			// only an explicit one may set every key (TestTrust).
			c, path, err := loadExplicit(t, tt.file)
			if tt.wantErr != "" {
				prefix := "Invalid config file " + path + ": "
				if err == nil {
					t.Fatalf("Load succeeded, want error containing %q", tt.wantErr)
				}
				if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %q\nwant prefix %q and reason containing %q", err, prefix, tt.wantErr)
				}
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("error %q is not invalid-argument", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.Path() != path {
				t.Fatalf("Path() = %q, want %q", c.Path(), path)
			}
			m := asMap(t, c)
			for key, want := range tt.want {
				if got := get(m, key); !reflect.DeepEqual(got, jsonValue(t, want)) {
					t.Errorf("%s = %#v, want %s", key, got, want)
				}
			}
			for _, key := range tt.absent {
				parent, last := m, key
				if i := strings.LastIndexByte(key, '.'); i >= 0 {
					parent, _ = get(m, key[:i]).(map[string]any)
					last = key[i+1:]
				}
				if _, ok := parent[last]; ok {
					t.Errorf("%s present in JSON output", key)
				}
			}
		})
	}
}

// Item 29: the working directory file wins and files are never merged.
func TestLoadPrecedence(t *testing.T) {
	tests := []struct {
		name      string
		cwdFile   string
		homeFile  string
		wantFrom  string // "cwd", "home" or "" (defaults)
		wantMax   int
		wantDebug bool
	}{
		{name: "cwd wins, no merge", cwdFile: `{"maxConcurrent":3}`, homeFile: `{"maxConcurrent":7,"debug":true}`, wantFrom: "cwd", wantMax: 3},
		{name: "home when cwd has none", homeFile: `{"maxConcurrent":7,"debug":true}`, wantFrom: "home", wantMax: 7, wantDebug: true},
		{name: "neither", wantMax: 10},
		{name: "invalid home ignored when cwd valid", cwdFile: `{}`, homeFile: `{not json`, wantFrom: "cwd", wantMax: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, cwd, home, err := loadWith(t, tt.cwdFile, tt.homeFile)
			if err != nil {
				t.Fatal(err)
			}
			var wantPath string
			switch tt.wantFrom {
			case "cwd":
				wantPath = filepath.Join(cwd, "isol8.config.json")
			case "home":
				wantPath = filepath.Join(home, ".isol8", "config.json")
			}
			if c.Path() != wantPath {
				t.Fatalf("Path() = %q, want %q", c.Path(), wantPath)
			}
			if c.MaxConcurrent != tt.wantMax || c.Debug != tt.wantDebug {
				t.Fatalf("maxConcurrent=%d debug=%v, want %d %v", c.MaxConcurrent, c.Debug, tt.wantMax, tt.wantDebug)
			}
		})
	}

	t.Run("invalid home file fails when cwd has none", func(t *testing.T) {
		_, _, home, err := loadWith(t, "", `{"maxConcurrent":"x"}`)
		want := "Invalid config file " + filepath.Join(home, ".isol8", "config.json") + ": maxConcurrent must be a number"
		if err == nil || err.Error() != want {
			t.Fatalf("error = %v, want %q", err, want)
		}
	})
	t.Run("empty home skips the home candidate", func(t *testing.T) {
		c, err := Load(t.TempDir(), "", os.Getuid())
		if err != nil || c.Path() != "" {
			t.Fatalf("Load = %v, %v", c, err)
		}
	})
	t.Run("directory in place of the file", func(t *testing.T) {
		cwd := t.TempDir()
		if err := os.Mkdir(filepath.Join(cwd, "isol8.config.json"), 0o755); err != nil {
			t.Fatal(err)
		}
		_, err := Load(cwd, "", os.Getuid())
		if err == nil || !strings.Contains(err.Error(), "is a directory") {
			t.Fatalf("error = %v, want 'is a directory'", err)
		}
	})
	t.Run("relative cwd is made absolute", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "isol8.config.json"), `{"debug":true}`)
		t.Chdir(dir)
		c, err := Load("", "", os.Getuid())
		if err != nil {
			t.Fatal(err)
		}
		if !filepath.IsAbs(c.Path()) || filepath.Base(c.Path()) != "isol8.config.json" {
			t.Fatalf("Path() = %q", c.Path())
		}
	})
}

func TestSource(t *testing.T) {
	c, file, err := loadExplicit(t, `{"defaults":{"timeoutMs":60000,"network":null},"poolSize":{"clean":2},"containerd":{"runtime":"crun"}}`)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key  string
		want string
	}{
		{"defaults.timeoutMs", file},
		{"defaults", file},
		{"poolSize", file},
		{"poolSize.clean", file},
		{"containerd.runtime", file},
		{"containerd", file},
		{"defaults.network", "default"}, // null means default
		{"defaults.memoryLimit", "default"},
		{"maxConcurrent", "default"},
		{"remoteCode.blockedHosts", "default"},
		{"poolSize.dirty", "default"},
		{"nonsense.key", "default"},
		{"", "default"},
		{"default", "default"}, // must not match "defaults.*"
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := c.Source(tt.key); got != tt.want {
				t.Fatalf("Source(%q) = %q, want %q", tt.key, got, tt.want)
			}
		})
	}
	if got := Defaults().Source("defaults.timeoutMs"); got != "default" {
		t.Fatalf("Defaults().Source = %q", got)
	}
}

// Item 30: human output.
func TestHuman(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		c, _, _, err := loadWith(t, "", "")
		if err != nil {
			t.Fatal(err)
		}
		out := c.Human()
		for _, s := range []string{"Isol8 Configuration", "General", "defaults", "30000", "512m", "none",
			"  Source: defaults (no config file found)\n", "  Max concurrent:  10\n", "  Timeout:         30000ms\n",
			"  CPU limit:       1\n", "  Whitelist:       (none)\n", "  Max idle time:   3600000ms (60min)\n",
			"  Pool size:       1,1\n", "  Runtime:         runc\n", "  ── Pool Defaults (Serve) ──\n"} {
			if !strings.Contains(out, s) {
				t.Errorf("human output lacks %q:\n%s", s, out)
			}
		}
		if !strings.HasPrefix(out, "\nIsol8 Configuration\n\n") || !strings.HasSuffix(out, "\n\n") {
			t.Errorf("human output framing wrong:\n%q", out)
		}
	})
	t.Run("file", func(t *testing.T) {
		c, cwd, _, err := loadWith(t, `{"poolSize":4,"network":{"whitelist":["a","b"],"blacklist":["c"]},"cleanup":{"maxContainerAgeMs":30000},"defaults":{"cpuLimit":0.5}}`, "")
		if err != nil {
			t.Fatal(err)
		}
		out := c.Human()
		for _, s := range []string{"  Source: " + filepath.Join(cwd, "isol8.config.json") + "\n",
			"  Pool size:       4\n", "  Whitelist:       a, b\n", "  Blacklist:       c\n",
			"  Max idle time:   30000ms (0.5min)\n", "  CPU limit:       0.5\n", "isol8.config.json"} {
			if !strings.Contains(out, s) {
				t.Errorf("human output lacks %q:\n%s", s, out)
			}
		}
		if strings.Contains(out, "Private dests") {
			t.Errorf("the guard line shows without the key:\n%s", out)
		}
	})
	t.Run("private destinations", func(t *testing.T) {
		c, _, err := loadExplicit(t, `{"network":{"allowPrivateDestinations":true}}`)
		if err != nil {
			t.Fatal(err)
		}
		if out := c.Human(); !strings.Contains(out, "  Private dests:   allowed (SSRF guard off)\n") {
			t.Errorf("human output lacks the guard line:\n%s", out)
		}
	})
}

func TestPoolSizeJSON(t *testing.T) {
	tests := []struct {
		in   string
		want PoolSize
		out  string
	}{
		{in: `3`, want: PoolSizeOf(3), out: `3`},
		{in: `{"clean":2,"dirty":4}`, want: PoolSize{Clean: 2, Dirty: 4}, out: `{"clean":2,"dirty":4}`},
		{in: `{"clean":3,"dirty":3}`, want: PoolSize{Clean: 3, Dirty: 3}, out: `{"clean":3,"dirty":3}`},
		{in: `{}`, want: PoolSize{Clean: 1, Dirty: 1}, out: `{"clean":1,"dirty":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var p PoolSize
			if err := json.Unmarshal([]byte(tt.in), &p); err != nil {
				t.Fatal(err)
			}
			if p != tt.want {
				t.Fatalf("Unmarshal = %+v, want %+v", p, tt.want)
			}
			out, err := json.Marshal(p)
			if err != nil || string(out) != tt.out {
				t.Fatalf("Marshal = %s, %v; want %s", out, err, tt.out)
			}
		})
	}
	var p PoolSize
	if err := json.Unmarshal([]byte(`"x"`), &p); err == nil {
		t.Fatal("string pool size accepted")
	}
}

// Item 35.
func TestParseMemoryLimit(t *testing.T) {
	const bad = `Invalid memory limit format: "%s". Use e.g. "512m", "1g".`
	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{in: "512m", want: 536870912},
		{in: "1g", want: 1073741824},
		{in: "256k", want: 262144},
		{in: "1024", want: 1024},
		{in: "512mb", want: 536870912},
		{in: "512MB", want: 536870912},
		{in: "1G", want: 1073741824},
		{in: "2t", want: 2 << 40},
		{in: "1.5g", want: 1610612736},
		{in: "0.1k", want: 102},
		{in: "512 m", want: 536870912},
		{in: "10b", want: 10},
		{in: "0", want: 0},
		{in: "invalid", wantErr: strings.Replace(bad, "%s", "invalid", 1)},
		{in: "", wantErr: strings.Replace(bad, "%s", "", 1)},
		{in: "-1m", wantErr: "Invalid memory limit format"},
		{in: " 512m", wantErr: "Invalid memory limit format"},
		{in: "512m ", wantErr: "Invalid memory limit format"},
		{in: "512m\n", wantErr: "Invalid memory limit format"},
		{in: "1p", wantErr: "Invalid memory limit format"},
		{in: "1e3", wantErr: "Invalid memory limit format"},
		{in: ".5g", wantErr: "Invalid memory limit format"},
		{in: "5.g", wantErr: "Invalid memory limit format"},
		{in: "1gbb", wantErr: "Invalid memory limit format"},
		{in: "8388608t", wantErr: `Memory limit too large: "8388608t"`},
		{in: strings.Repeat("9", 400), wantErr: "Memory limit too large"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseMemoryLimit(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) || !errdefs.IsInvalidArgument(err) {
					t.Fatalf("ParseMemoryLimit(%q) = %d, %v; want error %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseMemoryLimit(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestDefaultsAreFresh(t *testing.T) {
	a := Defaults()
	a.RemoteCode.BlockedHosts[0] = "mutated"
	a.Network.Whitelist = append(a.Network.Whitelist, "x")
	b := Defaults()
	if b.RemoteCode.BlockedHosts[0] != "^localhost$" || len(b.Network.Whitelist) != 0 {
		t.Fatal("Defaults() shares state between calls")
	}
	if !slices.Equal(b.RemoteCode.BlockedHosts, DefaultBlockedHosts()) || len(DefaultBlockedHosts()) != 10 {
		t.Fatal("blockedHosts default wrong")
	}
	if err := b.Validate(); err != nil {
		t.Fatalf("Defaults() do not validate: %v", err)
	}
}

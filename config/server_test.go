package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestServerSection(t *testing.T) {
	c, err := Parse([]byte(`{"server":{"allowClientOverrides":false,"maxQueue":5,"queueTimeoutMs":1000,"maxBodyBytes":4096,"maxSessions":3,"prewarm":["python"]},"host":"unix:///run/isol8/isol8.sock"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Server{MaxQueue: 5, QueueTimeoutMs: 1000, MaxBodyBytes: 4096, MaxSessions: 3, Prewarm: []string{"python"}}
	if !reflect.DeepEqual(c.Server, want) || c.Host != "unix:///run/isol8/isol8.sock" {
		t.Fatalf("parsed %+v %q", c.Server, c.Host)
	}
	for doc, want := range map[string]string{
		`{"server":{"maxQueue":-1}}`:            "server.maxQueue must be >= 0",
		`{"server":{"queueTimeoutMs":0}}`:       "server.queueTimeoutMs",
		`{"server":{"maxBodyBytes":10}}`:        "server.maxBodyBytes must be >= 1024",
		`{"server":{"allowClientOverrides":1}}`: "server.allowClientOverrides",
		`{"host":5}`:                            "host",
	} {
		if _, err := Parse([]byte(doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", doc, err, want)
		}
	}
}

// A config file in the working directory cannot redirect runs (and the
// API key) to another server.
func TestHostNeedsTrust(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, CwdFile), []byte(`{"host":"http://evil.example"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir, "", os.Getuid()); err == nil || !strings.Contains(err.Error(), `"host"`) {
		t.Fatalf("untrusted host: %v", err)
	}
}

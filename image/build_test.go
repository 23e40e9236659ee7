package image

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestMmdebstrapArgsNameNoMirror(t *testing.T) {
	args := mmdebstrapArgs(defaultBase, "/cache/apt archives", "/target", nil)
	if got := args[len(args)-3:]; !slices.Equal(got, []string{"--", "bookworm", "/target"}) {
		t.Fatalf("args end in %q, want -- suite target (no mirror)", got)
	}
	for _, a := range args {
		if strings.Contains(a, "://") || strings.Contains(a, "debian.org") {
			t.Errorf("argument names a mirror: %q", a)
		}
	}
	for _, want := range []string{
		"--variant=minbase", "--include=ca-certificates",
		"--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
		"--dpkgopt=path-exclude=/usr/share/doc/*",
		"--setup-hook=sync-in '/cache/apt archives' /var/cache/apt/archives/",
	} {
		if !slices.Contains(args, want) {
			t.Errorf("missing %q in %q", want, args)
		}
	}
}

func TestAddAccountLine(t *testing.T) {
	passwd := "root:x:0:0:root:/root:/bin/bash\n_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\n"
	acct := baseAccounts(defaultBase)["etc/passwd"]
	if acct.line != "sandbox:x:100:101::/sandbox:/bin/bash" {
		t.Fatalf("passwd line %q", acct.line)
	}
	out, err := addAccountLine([]byte(passwd), acct)
	if err != nil || string(out) != passwd+acct.line+"\n" {
		t.Fatalf("add: %q, %v", out, err)
	}
	again, err := addAccountLine(out, acct)
	if err != nil || string(again) != string(out) {
		t.Fatalf("add twice: %q, %v", again, err)
	}
	if _, err := addAccountLine([]byte("other:x:100:100::/:/bin/sh\n"), acct); err == nil {
		t.Error("uid conflict accepted")
	}
	if _, err := addAccountLine([]byte("sandbox:x:1000:1000::/:/bin/sh\n"), acct); err == nil {
		t.Error("name conflict accepted")
	}
	group := baseAccounts(defaultBase)["etc/group"]
	if _, err := addAccountLine([]byte("users:x:100:\n"), group); err != nil {
		t.Errorf("gid 101 should not clash with users (100): %v", err)
	}
	if out, _ := addAccountLine([]byte("root:x:0:"), group); string(out) != "root:x:0:\nsandbox:x:101:\n" {
		t.Errorf("missing final newline handled badly: %q", out)
	}
}

func TestHostAptSources(t *testing.T) {
	root := t.TempDir()
	write := func(name, content string) {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("etc/apt/sources.list", "# only comments\n")
	write("etc/apt/sources.list.d/debian.sources", "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n")
	write("etc/apt/sources.list.d/security.list", "deb http://mirror.example/debian-security bookworm-security main\n")
	write("etc/apt/sources.list.d/nodesource.sources", "Types: deb\nURIs: https://deb.nodesource.example/node_20.x\nSuites: nodistro\n")
	write("etc/apt/sources.list.d/old.list", "# deb http://x bookworm main\n")
	write("etc/apt/sources.list.d/disabled.sources.disabled", "Suites: bookworm\n")
	got := hostAptSources(root, "bookworm")
	want := []string{
		filepath.Join(root, "etc/apt/sources.list.d/security.list"),
		filepath.Join(root, "etc/apt/sources.list.d/debian.sources"),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	args := mmdebstrapArgs(defaultBase, "/c", "/target", got)
	if args[len(args)-1] != want[1] || args[len(args)-3] != "/target" {
		t.Fatalf("mirrors not passed after the target: %v", args[len(args)-4:])
	}
	if len(hostAptSources(root, "trixie")) != 0 {
		t.Fatal("sources of another suite must not be used")
	}
}

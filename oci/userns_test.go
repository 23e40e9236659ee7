package oci

import (
	"slices"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestWithUserNamespace(t *testing.T) {
	s, err := New(WithUserNamespace("/proc/42/ns/user", 1_000_000, 65536), WithUserNamespace("/proc/43/ns/user", 1_065_536, 65536))
	if err != nil {
		t.Fatal(err)
	}
	var users []specs.LinuxNamespace
	for _, n := range s.Linux.Namespaces {
		if n.Type == specs.UserNamespace {
			users = append(users, n)
		}
	}
	if len(users) != 1 || users[0].Path != "/proc/43/ns/user" {
		t.Fatalf("user namespaces %+v, want the last one only", users)
	}
	want := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1_065_536, Size: 65536}}
	if !slices.Equal(s.Linux.UIDMappings, want) || !slices.Equal(s.Linux.GIDMappings, want) {
		t.Fatalf("mappings %+v %+v", s.Linux.UIDMappings, s.Linux.GIDMappings)
	}
	if m := mountAt(t, s, "/sys"); m.Type != "sysfs" {
		t.Fatalf("with a network namespace /sys stays sysfs, got %+v", m)
	}

	h, err := New(WithNetwork(NetworkHost, ""), WithUserNamespace("", 1_000_000, 65536))
	if err != nil {
		t.Fatal(err)
	}
	m := mountAt(t, h, "/sys")
	if m.Type != "bind" || m.Source != "/sys" || !slices.Contains(m.Options, "rbind") || !slices.Contains(m.Options, "ro") {
		t.Fatalf("host network: /sys %+v, want a read-only rbind of the host's", m)
	}
	if !slices.ContainsFunc(h.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.UserNamespace && n.Path == "" }) {
		t.Fatalf("no user namespace to create: %+v", h.Linux.Namespaces)
	}
}

func TestWithUserNamespaceErrors(t *testing.T) {
	for _, o := range []Opt{
		WithUserNamespace("", 0, 65536),
		WithUserNamespace("", 1, 0),
		WithUserNamespace("", 4294967295-100, 65536),
		WithUserNamespace("proc/1/ns/user", 1_000_000, 65536),
		WithUserNamespace("/proc/1/ns/user\x00", 1_000_000, 65536),
	} {
		if _, err := New(o); !errdefs.IsInvalidArgument(err) {
			t.Errorf("got %v, want invalid argument", err)
		}
	}
}

func TestWithNofileByInit(t *testing.T) {
	s, err := New(WithRlimitNofile(2048), WithNofileByInit())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range s.Process.Rlimits {
		if r.Type == "RLIMIT_NOFILE" {
			t.Fatalf("RLIMIT_NOFILE still set for the runtime: %+v", s.Process.Rlimits)
		}
	}
	if !slices.Contains(s.Process.Env, InitNofileEnv+"=2048") {
		t.Fatalf("env %v lacks %s=2048", s.Process.Env, InitNofileEnv)
	}
}

package docker

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isol8/isol8/driver"
	"github.com/isol8/isol8/oci"
	"github.com/isol8/isol8/seccomp"
)

func testSpec(t *testing.T, network string) *specs.Spec {
	t.Helper()
	prof, err := seccomp.Default()
	if err != nil {
		t.Fatal(err)
	}
	s, err := oci.New(oci.WithInit("/opt/isol8-init"), oci.WithMemory(256<<20), oci.WithCPU(0.5),
		oci.WithPids(40), oci.WithSandboxTmpfs(100<<20), oci.WithTmpTmpfs(50<<20),
		oci.WithNetwork(network, ""), oci.WithSeccomp(prof), oci.WithHostname("isol8"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestProjectCarriesTheSpec(t *testing.T) {
	spec := testSpec(t, oci.NetworkNone)
	o, err := project(driver.CreateRequest{ID: "isol8-x", Image: "isol8:bash", Spec: spec, Labels: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	hc, cfg := o.HostConfig, o.Config
	if !hc.ReadonlyRootfs || hc.NetworkMode != "none" || hc.LogConfig.Type != "none" || hc.Init == nil || *hc.Init {
		t.Fatalf("host config %+v", hc)
	}
	if hc.Memory != 256<<20 || hc.MemorySwap != 256<<20 || hc.NanoCPUs != 5e8 || hc.PidsLimit == nil || *hc.PidsLimit != 40 {
		t.Fatalf("resources %+v", hc.Resources)
	}
	if !slices.Equal(hc.CapDrop, []string{"ALL"}) || !slices.Equal(hc.CapAdd, seccomp.Capabilities()) {
		t.Fatalf("caps drop %v add %v", hc.CapDrop, hc.CapAdd)
	}
	if hc.Tmpfs["/sandbox"] != strings.Join(spec.Mounts[7].Options, ",") || !strings.Contains(hc.Tmpfs["/tmp"], "size=52428800") {
		t.Fatalf("tmpfs %v", hc.Tmpfs)
	}
	if hc.ShmSize != 64<<20 {
		t.Fatalf("shm %d", hc.ShmSize)
	}
	if !slices.Equal(hc.MaskedPaths, spec.Linux.MaskedPaths) || !slices.Equal(hc.ReadonlyPaths, spec.Linux.ReadonlyPaths) {
		t.Fatalf("paths %v %v", hc.MaskedPaths, hc.ReadonlyPaths)
	}
	if len(hc.Mounts) != 1 || hc.Mounts[0].Target != oci.InitPath || hc.Mounts[0].Source != "/opt/isol8-init" || !hc.Mounts[0].ReadOnly {
		t.Fatalf("mounts %+v", hc.Mounts)
	}
	if !slices.Contains(hc.SecurityOpt, "no-new-privileges") {
		t.Fatalf("security opts %v", hc.SecurityOpt)
	}
	var got specs.LinuxSeccomp
	for _, o := range hc.SecurityOpt {
		if js, ok := strings.CutPrefix(o, "seccomp="); ok {
			if err := json.Unmarshal([]byte(js), &got); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !reflect.DeepEqual(&got, spec.Linux.Seccomp) {
		t.Fatal("seccomp profile changed in projection")
	}
	if !slices.Equal(cfg.Entrypoint, []string{oci.InitPath}) || len(cfg.Cmd) != 0 || cfg.User != "0:0" || !cfg.OpenStdin || cfg.Tty || cfg.Labels["a"] != "b" {
		t.Fatalf("config %+v", cfg)
	}
	if hc.Sysctls["net.ipv4.ip_unprivileged_port_start"] != "1024" || hc.Sysctls["kernel.shm_rmid_forced"] != "1" {
		t.Fatalf("sysctls %v", hc.Sysctls)
	}
}

func TestProjectNetworks(t *testing.T) {
	o, err := project(driver.CreateRequest{ID: "h", Spec: testSpec(t, oci.NetworkHost)})
	if err != nil || o.HostConfig.NetworkMode != "host" {
		t.Fatalf("host: %v %v", o.HostConfig, err)
	}
	if _, ok := o.HostConfig.Sysctls["net.ipv4.ip_unprivileged_port_start"]; ok {
		t.Fatal("host network: the host's sysctls are not the sandbox's to set")
	}
	spec := testSpec(t, oci.NetworkNone)
	if err := oci.WithNetwork(oci.NetworkFiltered, "/run/netns/x")(spec); err != nil {
		t.Fatal(err)
	}
	_, err = project(driver.CreateRequest{ID: "j", Spec: spec, Network: driver.JoinNetwork("/run/netns/x")})
	if !errdefs.IsNotImplemented(err) {
		t.Fatalf("join: %v, want not implemented", err)
	}
}

func TestProjectRefusesIncompleteSpec(t *testing.T) {
	if _, err := project(driver.CreateRequest{ID: "x", Spec: &specs.Spec{}}); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("err %v", err)
	}
}

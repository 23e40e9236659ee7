package engine

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/isol8/isol8/api"
)

// Operator settings cannot arrive from a client: a client's JSON that names
// them decodes into api.Options without them, and WithClient keeps the
// operator's values.
func TestClientCannotSetOperatorOptions(t *testing.T) {
	hostile := []byte(`{"mode":"persistent","memoryLimit":"1g","persist":true,"maxConcurrent":1000,
		"security":{"seccomp":"custom","customProfilePath":"/etc/shadow"},
		"containerd":{"address":"/tmp/evil.sock","runtimeBinary":"/tmp/evil"},"initPath":"/tmp/evil-init"}`)
	var c api.Options
	if err := json.Unmarshal(hostile, &c); err != nil {
		t.Fatal(err)
	}
	op := Options{
		Persist:       false,
		MaxConcurrent: 4,
		InitPath:      "/usr/lib/isol8/isol8-init",
		Containerd:    ContainerdOptions{Address: "/run/containerd/containerd.sock", RuntimeBinary: "runc"},
		Security:      &Security{CustomProfilePath: "/etc/isol8/profile.json"},
	}
	got := op.WithClient(c)
	if got.Persist || got.MaxConcurrent != 4 || got.InitPath != op.InitPath || got.Containerd != op.Containerd {
		t.Errorf("a client changed operator settings: %+v", got)
	}
	if got.Security.CustomProfilePath != "/etc/isol8/profile.json" || got.Security.Seccomp != "custom" {
		t.Errorf("security = %+v", got.Security)
	}
	if got.Mode != ModePersistent || got.MemoryLimit != "1g" {
		t.Errorf("client settings lost: %+v", got)
	}
}

// Client and WithClient carry every client-askable field: a new field in
// api.Options that either forgets fails here.
func TestClientOptionsRoundTrip(t *testing.T) {
	ro := false
	c := api.Options{
		Mode: ModePersistent, Network: NetworkHost, NetworkFilter: &api.NetworkFilter{Whitelist: []string{"a"}},
		CPULimit: 2, MemoryLimit: "1g", PidsLimit: 7, ReadonlyRootFs: &ro, MaxOutputSize: 9,
		Secrets: map[string]string{"K": "v"}, TimeoutMs: 11, Image: "img", SandboxSize: "1g", TmpSize: "2g",
		Debug: true, LogNetwork: true, Security: &api.Security{Seccomp: SeccompUnconfined},
		PoolStrategy: PoolSecure, PoolSize: &api.PoolSize{Clean: 3, Dirty: 4},
		RemoteCode: &api.RemoteCodePolicy{RequireHash: true},
	}
	v := reflect.ValueOf(c)
	for i := 0; i < v.NumField(); i++ {
		if v.Field(i).IsZero() {
			t.Fatalf("test value leaves api.Options.%s zero: set it", v.Type().Field(i).Name)
		}
	}
	if got := (Options{}).WithClient(c).Client(); !reflect.DeepEqual(got, c) {
		t.Errorf("round trip lost fields:\n got %+v\nwant %+v", got, c)
	}
}

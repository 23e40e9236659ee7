package seccomp

import (
	"encoding/json"
	"fmt"
	"slices"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// load flattens a Docker-format profile with moby's loader for a spec whose
// bounding set is the init agent's capabilities: that is all of the spec the
// loader reads.
func load(data []byte) (*specs.LinuxSeccomp, error) {
	if err := noNullRules(data); err != nil {
		return nil, err
	}
	s := &specs.Spec{Process: &specs.Process{
		Capabilities: &specs.LinuxCapabilities{Bounding: Capabilities()},
	}}
	return mobyseccomp.LoadProfile(string(data), s)
}

// noNullRules rejects `"syscalls": [null]`, on which moby's loader (v0.3.0)
// dereferences a nil rule and panics. Other decoding errors are left to the
// loader.
func noNullRules(data []byte) error {
	var probe struct {
		Syscalls []*struct{} `json:"syscalls"`
	}
	if json.Unmarshal(data, &probe) != nil {
		return nil
	}
	if i := slices.Index(probe.Syscalls, nil); i >= 0 {
		return fmt.Errorf("seccomp profile: syscalls[%d] is null", i)
	}
	return nil
}

package seccomp

import (
	"errors"
	"fmt"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var knownArches = []specs.Arch{
	specs.ArchX86, specs.ArchX86_64, specs.ArchX32, specs.ArchARM, specs.ArchAARCH64,
	specs.ArchMIPS, specs.ArchMIPS64, specs.ArchMIPS64N32, specs.ArchMIPSEL,
	specs.ArchMIPSEL64, specs.ArchMIPSEL64N32, specs.ArchPPC, specs.ArchPPC64,
	specs.ArchPPC64LE, specs.ArchS390, specs.ArchS390X, specs.ArchPARISC,
	specs.ArchPARISC64, specs.ArchRISCV64, specs.ArchLOONGARCH64, specs.ArchM68K,
	specs.ArchSH, specs.ArchSHEB,
}

var knownActions = []specs.LinuxSeccompAction{
	specs.ActKill, specs.ActKillProcess, specs.ActKillThread, specs.ActTrap,
	specs.ActErrno, specs.ActTrace, specs.ActAllow, specs.ActLog, specs.ActNotify,
}

var knownOps = []specs.LinuxSeccompOperator{
	specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
	specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual,
}

// FromDockerJSON converts a Docker-format seccomp profile (the format of
// moby's profiles/seccomp/default.json; plain runtime-spec seccomp JSON is a
// subset of it) into a runtime-spec seccomp section for this host, with
// moby's own loader (github.com/moby/profiles/seccomp, as Docker and
// BuildKit use it): archMap contributes the host's native architecture and
// its sub-architectures, and includes/excludes are evaluated against the
// native architecture, the running kernel (minKernel) and a bounding set
// equal to Capabilities (the set the sandbox's init agent holds).
//
// moby's loader accepts what runc would reject only later, or not at all:
// an empty profile (it means "no seccomp" there), unknown actions, operators
// and architectures, argument indexes above 5, rules without names. isol8
// rejects those here, on the flattened result, so a bad custom profile fails
// with a message naming the rule before any sandbox starts. It does not
// compile the profile; see Validate.
//
// The loader needs Linux; elsewhere FromDockerJSON returns an error wrapping
// errdefs.ErrNotImplemented.
func FromDockerJSON(data []byte) (*specs.LinuxSeccomp, error) {
	p, err := load(data)
	if err != nil {
		return nil, err
	}
	if err := check(p); err != nil {
		return nil, err
	}
	return p, nil
}

// check rejects what moby's loader lets through but runc cannot load.
func check(p *specs.LinuxSeccomp) error {
	if p == nil || p.DefaultAction == "" {
		// moby's loader returns no profile at all for a profile without
		// defaultAction and syscalls: never run unconfined by accident.
		return errors.New("seccomp profile has no defaultAction")
	}
	if !slices.Contains(knownActions, p.DefaultAction) {
		return fmt.Errorf("seccomp profile: unknown defaultAction %q", p.DefaultAction)
	}
	for _, a := range p.Architectures {
		if !slices.Contains(knownArches, a) {
			return fmt.Errorf("seccomp profile: unknown architecture %q", a)
		}
	}
	for _, call := range p.Syscalls {
		if err := checkRule(call); err != nil {
			return fmt.Errorf("seccomp profile: %w", err)
		}
	}
	return nil
}

func checkRule(call specs.LinuxSyscall) error {
	if len(call.Names) == 0 {
		return fmt.Errorf("a %s rule has no names", call.Action)
	}
	if slices.Contains(call.Names, "") {
		return fmt.Errorf("a %s rule has an empty name", call.Action)
	}
	if !slices.Contains(knownActions, call.Action) {
		return fmt.Errorf("syscall %s: unknown action %q", call.Names[0], call.Action)
	}
	for _, a := range call.Args {
		if !slices.Contains(knownOps, a.Op) {
			return fmt.Errorf("syscall %s: unknown operator %q", call.Names[0], a.Op)
		}
		if a.Index > 5 {
			return fmt.Errorf("syscall %s: argument index %d out of range 0-5", call.Names[0], a.Index)
		}
	}
	return nil
}

package seccomp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// dockerProfile is the Docker (moby) seccomp profile format, a superset of
// the runtime-spec seccomp section.
type dockerProfile struct {
	DefaultAction    specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet  *uint                    `json:"defaultErrnoRet,omitempty"`
	Architectures    []specs.Arch             `json:"architectures,omitempty"`
	ArchMap          []dockerArchMap          `json:"archMap,omitempty"`
	Flags            []specs.LinuxSeccompFlag `json:"flags,omitempty"`
	ListenerPath     string                   `json:"listenerPath,omitempty"`
	ListenerMetadata string                   `json:"listenerMetadata,omitempty"`
	Syscalls         []dockerSyscall          `json:"syscalls"`
}

type dockerArchMap struct {
	Arch      specs.Arch   `json:"architecture"`
	SubArches []specs.Arch `json:"subArchitectures"`
}

type dockerSyscall struct {
	Name     string                   `json:"name,omitempty"`
	Names    []string                 `json:"names,omitempty"`
	Action   specs.LinuxSeccompAction `json:"action"`
	Args     []specs.LinuxSeccompArg  `json:"args,omitempty"`
	ErrnoRet *uint                    `json:"errnoRet,omitempty"`
	Comment  string                   `json:"comment,omitempty"`
	Includes *dockerFilter            `json:"includes,omitempty"`
	Excludes *dockerFilter            `json:"excludes,omitempty"`
}

type dockerFilter struct {
	Caps      []string `json:"caps,omitempty"`
	Arches    []string `json:"arches,omitempty"`
	MinKernel string   `json:"minKernel,omitempty"`
}

// goArchToSeccomp maps runtime.GOARCH to the native seccomp architecture an
// archMap entry is selected by.
var goArchToSeccomp = map[string]specs.Arch{
	"386":      specs.ArchX86,
	"amd64":    specs.ArchX86_64,
	"arm":      specs.ArchARM,
	"arm64":    specs.ArchAARCH64,
	"loong64":  specs.ArchLOONGARCH64,
	"mips":     specs.ArchMIPS,
	"mips64":   specs.ArchMIPS64,
	"mips64le": specs.ArchMIPSEL64,
	"mipsle":   specs.ArchMIPSEL,
	"ppc":      specs.ArchPPC,
	"ppc64":    specs.ArchPPC64,
	"ppc64le":  specs.ArchPPC64LE,
	"riscv64":  specs.ArchRISCV64,
	"s390":     specs.ArchS390,
	"s390x":    specs.ArchS390X,
}

// goArchToDocker maps runtime.GOARCH to the names Docker profiles use in
// includes/excludes.arches where they differ from GOARCH.
var goArchToDocker = map[string]string{
	"386":      "x86",
	"mips64le": "mipsel64",
	"mipsle":   "mipsel",
}

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
// subset of it) into a runtime-spec seccomp section for this host:
//
//   - defaultAction, defaultErrnoRet, flags; names or (legacy) name, action,
//     errnoRet and args (index, value, valueTwo, op) per rule;
//   - architectures is taken as is; archMap contributes the entry whose
//     architecture is this host's native one (by runtime.GOARCH) plus its
//     subArchitectures; giving both is an error, as in Docker;
//   - includes/excludes.arches are matched against runtime.GOARCH (Docker's
//     spellings "x86", "mipsel", "mipsel64" are accepted too);
//   - includes/excludes.caps are matched against the fixed capability set
//     of Capabilities, not against any spec: a rule that includes caps is
//     kept only if all of them are in that set, a rule that excludes caps is
//     dropped if any of them is;
//   - includes/excludes.minKernel ("major.minor") is compared with the
//     running kernel.
//
// It checks actions, operators and architecture names but does not compile
// the profile; see Validate.
func FromDockerJSON(data []byte) (*specs.LinuxSeccomp, error) {
	var dp dockerProfile
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&dp); err != nil {
		return nil, fmt.Errorf("decoding seccomp profile: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decoding seccomp profile: trailing data after the JSON object")
	}
	return convert(&dp, runtime.GOARCH, capabilities[:], hostKernel)
}

// convert flattens dp for one architecture and capability set; kernel
// reports the running kernel's version when a rule asks for minKernel.
func convert(dp *dockerProfile, goarch string, caps []string, kernel func() (kernelVersion, error)) (*specs.LinuxSeccomp, error) {
	if dp.DefaultAction == "" {
		return nil, errors.New("seccomp profile has no defaultAction")
	}
	if !slices.Contains(knownActions, dp.DefaultAction) {
		return nil, fmt.Errorf("seccomp profile: unknown defaultAction %q", dp.DefaultAction)
	}
	if len(dp.Architectures) > 0 && len(dp.ArchMap) > 0 {
		return nil, errors.New("seccomp profile: both architectures and archMap are given; use one")
	}
	out := &specs.LinuxSeccomp{
		DefaultAction:    dp.DefaultAction,
		DefaultErrnoRet:  dp.DefaultErrnoRet,
		Flags:            dp.Flags,
		ListenerPath:     dp.ListenerPath,
		ListenerMetadata: dp.ListenerMetadata,
		Syscalls:         []specs.LinuxSyscall{},
	}
	out.Architectures = append(out.Architectures, dp.Architectures...)
	if native, ok := goArchToSeccomp[goarch]; ok {
		for _, m := range dp.ArchMap {
			if m.Arch == native {
				out.Architectures = append(out.Architectures, m.Arch)
				out.Architectures = append(out.Architectures, m.SubArches...)
			}
		}
	}
	for _, a := range out.Architectures {
		if !slices.Contains(knownArches, a) {
			return nil, fmt.Errorf("seccomp profile: unknown architecture %q", a)
		}
	}

	for i, call := range dp.Syscalls {
		names := call.Names
		if call.Name != "" {
			if len(call.Names) > 0 {
				return nil, fmt.Errorf("seccomp profile: syscalls[%d] gives both name and names", i)
			}
			names = []string{call.Name}
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("seccomp profile: syscalls[%d] has no names", i)
		}
		for _, n := range names {
			if n == "" {
				return nil, fmt.Errorf("seccomp profile: syscalls[%d] has an empty name", i)
			}
		}
		if !slices.Contains(knownActions, call.Action) {
			return nil, fmt.Errorf("seccomp profile: syscall %s: unknown action %q", names[0], call.Action)
		}
		for _, a := range call.Args {
			if !slices.Contains(knownOps, a.Op) {
				return nil, fmt.Errorf("seccomp profile: syscall %s: unknown operator %q", names[0], a.Op)
			}
			if a.Index > 5 {
				return nil, fmt.Errorf("seccomp profile: syscall %s: argument index %d out of range 0-5", names[0], a.Index)
			}
		}
		keep, err := applies(call, goarch, caps, kernel)
		if err != nil {
			return nil, fmt.Errorf("seccomp profile: syscall %s: %w", names[0], err)
		}
		if !keep {
			continue
		}
		out.Syscalls = append(out.Syscalls, specs.LinuxSyscall{
			Names:    slices.Clone(names),
			Action:   call.Action,
			ErrnoRet: call.ErrnoRet,
			Args:     slices.Clone(call.Args),
		})
	}
	return out, nil
}

// applies reports whether a rule's includes and excludes select it for
// goarch and caps, with Docker's semantics.
func applies(call dockerSyscall, goarch string, caps []string, kernel func() (kernelVersion, error)) (bool, error) {
	archMatches := func(arches []string) bool {
		return slices.Contains(arches, goarch) || slices.Contains(arches, goArchToDocker[goarch])
	}
	if ex := call.Excludes; ex != nil {
		if len(ex.Arches) > 0 && archMatches(ex.Arches) {
			return false, nil
		}
		for _, c := range ex.Caps {
			if slices.Contains(caps, c) {
				return false, nil
			}
		}
		if ex.MinKernel != "" {
			ok, err := kernelAtLeast(ex.MinKernel, kernel)
			if err != nil || ok {
				return false, err
			}
		}
	}
	if in := call.Includes; in != nil {
		if len(in.Arches) > 0 && !archMatches(in.Arches) {
			return false, nil
		}
		for _, c := range in.Caps {
			if !slices.Contains(caps, c) {
				return false, nil
			}
		}
		if in.MinKernel != "" {
			ok, err := kernelAtLeast(in.MinKernel, kernel)
			if err != nil || !ok {
				return false, err
			}
		}
	}
	return true, nil
}

type kernelVersion struct{ major, minor int }

// parseKernelVersion reads "major.minor" from the start of s ("6.1",
// "6.1.0-18-amd64").
func parseKernelVersion(s string) (kernelVersion, error) {
	parts := strings.SplitN(s, ".", 3)
	if len(parts) < 2 {
		return kernelVersion{}, fmt.Errorf("invalid kernel version %q", s)
	}
	major, err := strconv.Atoi(parts[0])
	if err != nil || major < 0 {
		return kernelVersion{}, fmt.Errorf("invalid kernel version %q", s)
	}
	minorDigits := parts[1]
	if i := strings.IndexFunc(minorDigits, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minorDigits = minorDigits[:i]
	}
	minor, err := strconv.Atoi(minorDigits)
	if err != nil {
		return kernelVersion{}, fmt.Errorf("invalid kernel version %q", s)
	}
	return kernelVersion{major, minor}, nil
}

func kernelAtLeast(minVersion string, kernel func() (kernelVersion, error)) (bool, error) {
	want, err := parseKernelVersion(minVersion)
	if err != nil {
		return false, fmt.Errorf("minKernel: %w", err)
	}
	have, err := kernel()
	if err != nil {
		return false, fmt.Errorf("minKernel: %w", err)
	}
	if have.major != want.major {
		return have.major > want.major, nil
	}
	return have.minor >= want.minor, nil
}

// Package seccomp owns isol8's seccomp profiles: the built-in allow-list
// (default.json, embedded in the binary), custom Docker-format profiles read
// from the engine host, and their validation with libseccomp.
//
// It returns runtime-spec *specs.LinuxSeccomp values for the oci package to
// place in a spec; it never loads a filter into the calling process, starts
// containers or imports a driver. Flattening Docker-format profiles uses
// moby's loader and needs Linux; validation needs Linux and cgo
// (libseccomp, linked statically into bin/isol8). Elsewhere Default,
// FromDockerJSON and Validate, and so Profile for "strict" and "custom",
// return an error wrapping errdefs.ErrNotImplemented.
//
// Profiles are flattened for one fixed capability set, the one the sandbox's
// init agent holds (see Capabilities): rules gated on capabilities the
// sandbox never has (CAP_SYS_ADMIN, CAP_SYS_PTRACE, ...) are dropped, which
// is why mount, unshare, setns, bpf, ptrace and the keyring calls are denied.
package seccomp

import (
	_ "embed"
	"errors"
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Seccomp modes accepted by Profile (config key security.seccomp).
const (
	ModeStrict     = "strict"
	ModeUnconfined = "unconfined"
	ModeCustom     = "custom"
)

//go:embed default.json
var defaultJSON []byte

// capabilities is the fixed capability set profiles are flattened for: what
// the sandbox's init agent (uid 0 in the container) holds. User code runs as
// uid 100 with none of them.
var capabilities = [...]string{
	"CAP_CHOWN",        // 0
	"CAP_DAC_OVERRIDE", // 1
	"CAP_FOWNER",       // 3
	"CAP_KILL",         // 5
	"CAP_SETGID",       // 6
	"CAP_SETUID",       // 7
	"CAP_SETPCAP",      // 8
}

// Capabilities returns the capability set of the sandbox's init agent, in
// capability-number order: the set includes.caps and excludes.caps of
// Docker-format profiles are evaluated against, and the one the oci package
// gives the sandbox (it reads it from here). CAP_SETPCAP is there only so
// the agent can empty its bounding set at start; it drops it right after.
func Capabilities() []string {
	return append([]string(nil), capabilities[:]...)
}

// DefaultJSON returns a copy of the built-in profile as shipped (Docker
// format), for backends that take the JSON rather than a runtime spec.
func DefaultJSON() []byte {
	return append([]byte(nil), defaultJSON...)
}

// Default returns the built-in allow-list profile converted for this host's
// architecture. It does not run Validate; Profile(ModeStrict, "") does.
func Default() (*specs.LinuxSeccomp, error) {
	return FromDockerJSON(defaultJSON)
}

// Profile returns the OCI seccomp section for a mode: "strict" (the embedded
// default), "unconfined" (nil, nil) or "custom" (a Docker-format JSON file at
// customPath). Strict and custom profiles are validated with libseccomp; a
// profile that fails refuses execution.
func Profile(mode, customPath string) (*specs.LinuxSeccomp, error) {
	p, err := Parse(mode, customPath)
	if err != nil {
		return nil, err
	}
	if err := ValidateFor(mode, customPath, p); err != nil {
		return nil, err
	}
	return p, nil
}

// Parse is Profile without the libseccomp validation (which costs ~15 ms):
// callers that run ValidateFor concurrently with other start-up work, and
// wait for it before any process runs under the profile, use it.
func Parse(mode, customPath string) (*specs.LinuxSeccomp, error) {
	switch mode {
	case ModeStrict:
		p, err := Default()
		if err != nil {
			return nil, fmt.Errorf("Failed to load default seccomp profile: %w", err)
		}
		return p, nil
	case ModeUnconfined:
		return nil, nil
	case ModeCustom:
		if customPath == "" {
			return nil, invalidArg(errors.New("custom seccomp mode requires security.customProfilePath"))
		}
		p, err := loadCustom(customPath)
		if err != nil {
			return nil, invalidArg(fmt.Errorf("Failed to load custom seccomp profile at %s: %w", customPath, err))
		}
		return p, nil
	default:
		return nil, invalidArg(fmt.Errorf("Unknown seccomp mode: %q. Expected strict, unconfined or custom", mode))
	}
}

// ValidateFor validates a profile returned by Parse, with the error texts of
// Profile.
func ValidateFor(mode, customPath string, p *specs.LinuxSeccomp) error {
	if p == nil {
		return nil
	}
	if err := Validate(p); err != nil {
		if mode == ModeCustom {
			return invalidArg(fmt.Errorf("Failed to load custom seccomp profile at %s: %w", customPath, err))
		}
		return fmt.Errorf("Failed to load default seccomp profile: %w", err)
	}
	return nil
}

func loadCustom(path string) (*specs.LinuxSeccomp, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return FromDockerJSON(data)
}

// Validate compiles p with libseccomp for the host architecture, the way
// runc will, without loading it into the calling process. It returns an
// error naming the first bad action, operator, architecture or rule.
//
// Like runc, it skips syscall names this host's libseccomp does not know
// (runc ignores them at load time, and answers ENOSYS for syscalls newer than
// the profile), and rules whose action equals the default action.
func Validate(p *specs.LinuxSeccomp) error {
	if p == nil {
		return errors.New("nil seccomp profile")
	}
	return validate(p)
}

// invalidArgError marks an error as errdefs.IsInvalidArgument without
// changing its text, which is part of the surface.
type invalidArgError struct{ error }

func (e invalidArgError) Unwrap() error     { return e.error }
func (e invalidArgError) InvalidParameter() {}

func invalidArg(err error) error { return invalidArgError{err} }

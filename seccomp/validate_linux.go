//go:build linux && cgo

package seccomp

import (
	"errors"
	"fmt"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// validate compiles p to BPF and discards it.
func validate(p *specs.LinuxSeccomp) error {
	f, err := buildFilter(p)
	if err != nil {
		return err
	}
	defer f.Release()
	// Generate the BPF program (not only the rule database): it catches
	// what libseccomp reports only at load time. libseccomp < 2.6 has no
	// in-memory export, so write it to /dev/null.
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("compiling seccomp filter: %w", err)
	}
	defer devNull.Close()
	if err := f.ExportBPF(devNull); err != nil {
		return fmt.Errorf("compiling seccomp filter: %w", err)
	}
	return nil
}

// buildFilter turns p into a libseccomp filter the way runc does (skipping
// unknown syscall names and rules equal to the default action), without
// loading it. The caller must Release it.
func buildFilter(p *specs.LinuxSeccomp) (_ *libseccomp.ScmpFilter, retErr error) {
	defAct, err := action(p.DefaultAction, p.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("defaultAction: %w", err)
	}
	if defAct == libseccomp.ActNotify {
		return nil, errors.New("defaultAction: SCMP_ACT_NOTIFY cannot be the default action")
	}
	f, err := libseccomp.NewFilter(defAct)
	if err != nil {
		return nil, fmt.Errorf("creating seccomp filter: %w", err)
	}
	defer func() {
		if retErr != nil {
			f.Release()
		}
	}()
	for _, a := range p.Architectures {
		// libseccomp spells SCMP_ARCH_X86_64 "x86_64", as runc converts it.
		sa, err := libseccomp.GetArchFromString(strings.TrimPrefix(strings.ToLower(string(a)), "scmp_arch_"))
		if err != nil {
			return nil, fmt.Errorf("architecture %s: %w", a, err)
		}
		if err := f.AddArch(sa); err != nil {
			return nil, fmt.Errorf("architecture %s: %w", a, err)
		}
	}
	for _, fl := range p.Flags {
		if err := setFlag(f, fl); err != nil {
			return nil, err
		}
	}
	if len(p.Syscalls) > 32 {
		// Binary-tree optimisation as runc enables it; older libseccomp
		// lacks it, which is not an error.
		_ = f.SetOptimize(2)
	}
	for _, call := range p.Syscalls {
		if err := addRule(f, call, defAct); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func setFlag(f *libseccomp.ScmpFilter, fl specs.LinuxSeccompFlag) error {
	var err error
	switch fl {
	case "SECCOMP_FILTER_FLAG_TSYNC":
		// libseccomp-golang always synchronises all threads.
	case specs.LinuxSeccompFlagLog:
		err = f.SetLogBit(true)
	case specs.LinuxSeccompFlagSpecAllow:
		err = f.SetSSB(true)
	default:
		return fmt.Errorf("flag %s: not supported", fl)
	}
	if err != nil {
		return fmt.Errorf("flag %s: %w", fl, err)
	}
	return nil
}

func action(a specs.LinuxSeccompAction, errnoRet *uint) (libseccomp.ScmpAction, error) {
	ret := func(def libseccomp.ScmpAction) (libseccomp.ScmpAction, error) {
		code := uint(unix.EPERM)
		if errnoRet != nil {
			code = *errnoRet
		}
		if code > 4095 {
			return libseccomp.ActInvalid, fmt.Errorf("%s: errnoRet %d out of range 0-4095", a, code)
		}
		return def.SetReturnCode(int16(code)), nil
	}
	switch a {
	case specs.ActAllow:
		return libseccomp.ActAllow, nil
	case specs.ActErrno:
		return ret(libseccomp.ActErrno)
	case specs.ActTrace:
		return ret(libseccomp.ActTrace)
	case specs.ActKill, specs.ActKillThread:
		return libseccomp.ActKillThread, nil
	case specs.ActKillProcess:
		return libseccomp.ActKillProcess, nil
	case specs.ActTrap:
		return libseccomp.ActTrap, nil
	case specs.ActLog:
		return libseccomp.ActLog, nil
	case specs.ActNotify:
		return libseccomp.ActNotify, nil
	default:
		return libseccomp.ActInvalid, fmt.Errorf("unknown action %q", a)
	}
}

func operator(op specs.LinuxSeccompOperator) (libseccomp.ScmpCompareOp, error) {
	switch op {
	case specs.OpNotEqual:
		return libseccomp.CompareNotEqual, nil
	case specs.OpLessThan:
		return libseccomp.CompareLess, nil
	case specs.OpLessEqual:
		return libseccomp.CompareLessOrEqual, nil
	case specs.OpEqualTo:
		return libseccomp.CompareEqual, nil
	case specs.OpGreaterEqual:
		return libseccomp.CompareGreaterEqual, nil
	case specs.OpGreaterThan:
		return libseccomp.CompareGreater, nil
	case specs.OpMaskedEqual:
		return libseccomp.CompareMaskedEqual, nil
	default:
		return libseccomp.CompareInvalid, fmt.Errorf("unknown operator %q", op)
	}
}

// addRule adds one runtime-spec rule for each of its names.
func addRule(f *libseccomp.ScmpFilter, call specs.LinuxSyscall, defAct libseccomp.ScmpAction) error {
	if len(call.Names) == 0 {
		return errors.New("syscall rule without names")
	}
	act, err := action(call.Action, call.ErrnoRet)
	if err != nil {
		return fmt.Errorf("syscall %s: %w", call.Names[0], err)
	}
	if act == libseccomp.ActNotify {
		// runc would need a seccomp agent listening on listenerPath; isol8 runs none.
		return fmt.Errorf("syscall %s: SCMP_ACT_NOTIFY is not supported", call.Names[0])
	}
	conds := make([]libseccomp.ScmpCondition, 0, len(call.Args))
	var perIndex [6]int
	for _, a := range call.Args {
		if a.Index >= uint(len(perIndex)) {
			return fmt.Errorf("syscall %s: argument index %d out of range 0-5", call.Names[0], a.Index)
		}
		op, err := operator(a.Op)
		if err != nil {
			return fmt.Errorf("syscall %s: %w", call.Names[0], err)
		}
		c, err := libseccomp.MakeCondition(a.Index, op, a.Value, a.ValueTwo)
		if err != nil {
			return fmt.Errorf("syscall %s: argument %d: %w", call.Names[0], a.Index, err)
		}
		perIndex[a.Index]++
		conds = append(conds, c)
	}
	// runc: several conditions on one argument become separate rules (OR);
	// otherwise all conditions form one rule (AND).
	split := false
	for _, n := range perIndex {
		split = split || n > 1
	}
	for _, name := range call.Names {
		if name == "" {
			return errors.New("syscall rule with an empty name")
		}
		if act == defAct {
			continue // redundant; libseccomp rejects it
		}
		nr, err := libseccomp.GetSyscallFromName(name)
		if err != nil {
			continue // unknown to this libseccomp: runc ignores it too
		}
		switch {
		case len(conds) == 0:
			err = f.AddRule(nr, act)
		case split:
			for _, c := range conds {
				if err = f.AddRuleConditional(nr, act, []libseccomp.ScmpCondition{c}); err != nil {
					break
				}
			}
		default:
			err = f.AddRuleConditional(nr, act, conds)
		}
		if err != nil {
			return fmt.Errorf("syscall %s: %w", name, err)
		}
	}
	return nil
}

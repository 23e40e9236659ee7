package seccomp

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// denied are the 47 syscalls the security contract requires to fail with EPERM.
var denied = strings.Fields(`acct add_key bpf clock_adjtime clock_settime create_module delete_module
finit_module get_mempolicy init_module ioperm iopl kcmp kexec_file_load kexec_load keyctl
lookup_dcookie mbind mount move_pages name_to_handle_at open_by_handle_at perf_event_open
pivot_root process_vm_readv process_vm_writev ptrace query_module quotactl reboot request_key
set_mempolicy setns settimeofday stime swapon swapoff sysfs syslog umount umount2 unshare uselib
userfaultfd ustat vm86 vm86old`)

// mustAllow are calls the init agent (Go runtime), the interpreters and
// package managers make; the default profile must allow them outright.
var mustAllow = strings.Fields(`read write openat close fstat newfstatat statx lseek mmap munmap
mprotect madvise brk futex rt_sigaction rt_sigprocmask rt_sigreturn sigaltstack sched_yield
sched_getaffinity getpid gettid tgkill kill execve exit_group wait4 waitid pidfd_open
pidfd_send_signal epoll_create1 epoll_ctl epoll_pwait eventfd2 pipe2 prctl setuid setgid setgroups
setresuid setresgid getdents64 unlinkat mkdirat renameat2 fchownat fchmodat getrandom
prlimit64 set_robust_list rseq connect sendto recvfrom setsockopt getsockname uname ioctl fcntl
dup3 chdir getcwd readlinkat faccessat2 clock_gettime clock_nanosleep nanosleep setsid
setpgid getrusage umask utimensat statfs sendfile copy_file_range memfd_create`)

// nativeArch is the archMap entry default.json selects on the hosts the
// project builds for.
var nativeArch = map[string]specs.Arch{"amd64": specs.ArchX86_64, "arm64": specs.ArchAARCH64}

func allowedNames(p *specs.LinuxSeccomp, conditional bool) map[string]bool {
	m := map[string]bool{}
	for _, s := range p.Syscalls {
		if s.Action != specs.ActAllow && s.Action != specs.ActLog {
			continue
		}
		if len(s.Args) > 0 && !conditional {
			continue
		}
		for _, n := range s.Names {
			m[n] = true
		}
	}
	return m
}

func mustDefault(t *testing.T) *specs.LinuxSeccomp {
	t.Helper()
	p, err := Default()
	if errdefs.IsNotImplemented(err) && runtime.GOOS != "linux" {
		t.Skipf("Default: %v", err)
	}
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	return p
}

func TestEmbeddedEqualsShippedFile(t *testing.T) {
	onDisk, err := os.ReadFile("default.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, DefaultJSON()) {
		t.Fatal("embedded profile differs from default.json")
	}
	var v map[string]any
	if err := json.Unmarshal(onDisk, &v); err != nil {
		t.Fatalf("default.json is not JSON: %v", err)
	}
}

func TestDefaultShape(t *testing.T) {
	p := mustDefault(t)
	if p.DefaultAction != specs.ActErrno {
		t.Errorf("defaultAction = %s, want %s", p.DefaultAction, specs.ActErrno)
	}
	if p.DefaultErrnoRet == nil || *p.DefaultErrnoRet != 1 {
		t.Errorf("defaultErrnoRet = %v, want 1 (EPERM)", p.DefaultErrnoRet)
	}
	if native, ok := nativeArch[runtime.GOARCH]; ok {
		if len(p.Architectures) == 0 || p.Architectures[0] != native {
			t.Errorf("architectures = %v, want %s first", p.Architectures, native)
		}
	}
	if len(allowedNames(p, false)) < 300 {
		t.Errorf("only %d syscalls allowed outright; the allow-list looks truncated", len(allowedNames(p, false)))
	}
}

func TestDefaultDenies(t *testing.T) {
	if len(denied) != 47 {
		t.Fatalf("test table has %d names, want 47", len(denied))
	}
	p := mustDefault(t)
	allowed := allowedNames(p, true)
	for _, name := range denied {
		t.Run(name, func(t *testing.T) {
			if allowed[name] {
				t.Errorf("%s is allowed", name)
			}
			for _, s := range p.Syscalls {
				if slices.Contains(s.Names, name) {
					t.Errorf("%s appears in a rule (%s); it must fall to the default EPERM", name, s.Action)
				}
			}
		})
	}
}

func TestDefaultAllows(t *testing.T) {
	allowed := allowedNames(mustDefault(t), false)
	for _, name := range mustAllow {
		t.Run(name, func(t *testing.T) {
			if !allowed[name] {
				t.Errorf("%s is not allowed outright", name)
			}
		})
	}
}

func TestDefaultCloneRules(t *testing.T) {
	const nsFlags = 0x7e020000 // CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
	p := mustDefault(t)
	var clone, clone3 []specs.LinuxSyscall
	for _, s := range p.Syscalls {
		if slices.Contains(s.Names, "clone") {
			clone = append(clone, s)
		}
		if slices.Contains(s.Names, "clone3") {
			clone3 = append(clone3, s)
		}
	}
	if len(clone) != 1 {
		t.Fatalf("clone rules = %+v, want exactly one for %s", clone, runtime.GOARCH)
	}
	c := clone[0]
	wantIdx := uint(0)
	if runtime.GOARCH == "s390x" || runtime.GOARCH == "s390" {
		wantIdx = 1
	}
	if c.Action != specs.ActAllow || len(c.Names) != 1 || len(c.Args) != 1 ||
		c.Args[0] != (specs.LinuxSeccompArg{Index: wantIdx, Value: nsFlags, ValueTwo: 0, Op: specs.OpMaskedEqual}) {
		t.Errorf("clone rule = %+v, want allow only when (flags & %#x) == 0", c, nsFlags)
	}
	if len(clone3) != 1 || clone3[0].Action != specs.ActErrno || clone3[0].ErrnoRet == nil || *clone3[0].ErrnoRet != 38 {
		t.Errorf("clone3 rules = %+v, want one SCMP_ACT_ERRNO with errnoRet 38 (ENOSYS)", clone3)
	}
}

func TestProfile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	denyMkdir := write("deny-mkdir.json", `{
  "defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
}`)
	notJSON := write("broken.json", `{"defaultAction": `)
	badAction := write("bad-action.json", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_MAYBE"}]}`)
	missing := filepath.Join(dir, "missing.json")
	canValidate := Validate(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow}) == nil

	for _, tc := range []struct {
		name, mode, path string
		needsValidate    bool
		wantNil          bool
		wantErr          string // exact text, or prefix when ending in "*"
		wantInvalidArg   bool
		check            func(t *testing.T, p *specs.LinuxSeccomp)
	}{
		{name: "strict", mode: "strict", needsValidate: true, check: func(t *testing.T, p *specs.LinuxSeccomp) {
			if p.DefaultAction != specs.ActErrno {
				t.Errorf("defaultAction = %s", p.DefaultAction)
			}
		}},
		{name: "unconfined", mode: "unconfined", wantNil: true},
		{name: "custom deny mkdir", mode: "custom", path: denyMkdir, needsValidate: true, check: func(t *testing.T, p *specs.LinuxSeccomp) {
			want := &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Syscalls: []specs.LinuxSyscall{{
					Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: p.Syscalls[0].ErrnoRet,
				}},
			}
			if e := p.Syscalls[0].ErrnoRet; e == nil || *e != 1 {
				t.Errorf("errnoRet = %v, want 1", e)
			}
			gotJ, _ := json.Marshal(p)
			wantJ, _ := json.Marshal(want)
			if !bytes.Equal(gotJ, wantJ) {
				t.Errorf("got %s\nwant %s", gotJ, wantJ)
			}
		}},
		{name: "custom missing file", mode: "custom", path: missing, wantInvalidArg: true,
			wantErr: "Failed to load custom seccomp profile at " + missing + ": *"},
		{name: "custom invalid JSON", mode: "custom", path: notJSON, wantInvalidArg: true,
			wantErr: "Failed to load custom seccomp profile at " + notJSON + ": *"},
		{name: "custom bad action", mode: "custom", path: badAction, wantInvalidArg: true,
			wantErr: "Failed to load custom seccomp profile at " + badAction + ": *"},
		{name: "custom without path", mode: "custom", wantInvalidArg: true,
			wantErr: "custom seccomp mode requires security.customProfilePath"},
		{name: "unknown mode", mode: "safety", wantInvalidArg: true,
			wantErr: `Unknown seccomp mode: "safety". Expected strict, unconfined or custom`},
		{name: "empty mode", mode: "", wantInvalidArg: true,
			wantErr: `Unknown seccomp mode: "". Expected strict, unconfined or custom`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Profile(tc.mode, tc.path)
			if tc.needsValidate && !canValidate {
				if err == nil || !errdefs.IsNotImplemented(err) {
					t.Fatalf("without libseccomp: err = %v, want not implemented", err)
				}
				return
			}
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("err = nil, want %q", tc.wantErr)
				}
				if prefix, ok := strings.CutSuffix(tc.wantErr, "*"); ok {
					if !strings.HasPrefix(err.Error(), prefix) || len(err.Error()) == len(prefix) {
						t.Errorf("err = %q, want prefix %q and a cause", err, prefix)
					}
				} else if err.Error() != tc.wantErr {
					t.Errorf("err = %q, want %q", err, tc.wantErr)
				}
				if tc.wantInvalidArg && !errdefs.IsInvalidArgument(err) {
					t.Errorf("errdefs.IsInvalidArgument(%v) = false", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Profile: %v", err)
			}
			if tc.wantNil != (p == nil) {
				t.Fatalf("profile = %v, want nil: %v", p, tc.wantNil)
			}
			if tc.check != nil {
				tc.check(t, p)
			}
		})
	}
}

func TestProfileMissingFileKeepsCause(t *testing.T) {
	_, err := Profile("custom", filepath.Join(t.TempDir(), "nope.json"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want it to wrap os.ErrNotExist", err)
	}
}

func TestCapabilitiesIsACopy(t *testing.T) {
	c := Capabilities()
	c[0] = "CAP_SYS_ADMIN"
	if Capabilities()[0] != "CAP_CHOWN" {
		t.Fatal("Capabilities exposes package state")
	}
}

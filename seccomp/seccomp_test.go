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

// denied are the 47 syscalls surface.md §4.1 requires to fail with EPERM.
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
	if native, ok := goArchToSeccomp[runtime.GOARCH]; ok && (runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64") {
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

func TestConvert(t *testing.T) {
	kernel := func(v string) func() (kernelVersion, error) {
		return func() (kernelVersion, error) { return parseKernelVersion(v) }
	}
	u := func(n uint) *uint { return &n }
	for _, tc := range []struct {
		name    string
		json    string
		goarch  string
		kernel  string
		want    *specs.LinuxSeccomp
		wantErr string
	}{
		{
			name:   "legacy name and errnoRet",
			json:   `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"mkdir","action":"SCMP_ACT_ERRNO","errnoRet":13}]}`,
			goarch: "amd64",
			want: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"mkdir"}, Action: specs.ActErrno, ErrnoRet: u(13)}}},
		},
		{
			name: "archMap picks the native entry",
			json: `{"defaultAction":"SCMP_ACT_ERRNO","archMap":[
				{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"]},
				{"architecture":"SCMP_ARCH_AARCH64","subArchitectures":["SCMP_ARCH_ARM"]}],"syscalls":[]}`,
			goarch: "arm64",
			want: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
				Architectures: []specs.Arch{specs.ArchAARCH64, specs.ArchARM}, Syscalls: []specs.LinuxSyscall{}},
		},
		{
			name:   "architectures as is",
			json:   `{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],"syscalls":[]}`,
			goarch: "arm64",
			want: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
				Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86}, Syscalls: []specs.LinuxSyscall{}},
		},
		{
			name: "includes and excludes by arch, caps and kernel",
			json: `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
				{"names":["arch_prctl"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["amd64","x32"]}},
				{"names":["cacheflush"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["arm","arm64"]}},
				{"names":["modify_ldt"],"action":"SCMP_ACT_ALLOW","excludes":{"arches":["amd64"]}},
				{"names":["mount"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}},
				{"names":["kill"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_KILL"]}},
				{"names":["chown"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_CHOWN","CAP_SYS_ADMIN"]}},
				{"names":["clone"],"action":"SCMP_ACT_ALLOW","excludes":{"caps":["CAP_SYS_ADMIN"]}},
				{"names":["setuid"],"action":"SCMP_ACT_ALLOW","excludes":{"caps":["CAP_SETUID"]}},
				{"names":["ptrace"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"4.8"}},
				{"names":["futex_waitv"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"5.16"}},
				{"names":["uselib"],"action":"SCMP_ACT_ALLOW","excludes":{"minKernel":"5.0"}}]}`,
			goarch: "amd64",
			kernel: "5.10.0-28-amd64",
			want: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"arch_prctl"}, Action: specs.ActAllow},
				{Names: []string{"kill"}, Action: specs.ActAllow},
				{Names: []string{"clone"}, Action: specs.ActAllow},
				{Names: []string{"ptrace"}, Action: specs.ActAllow},
			}},
		},
		{
			name:   "x86 spelling for 386",
			json:   `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["modify_ldt"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["x86"]}}]}`,
			goarch: "386",
			want: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"modify_ldt"}, Action: specs.ActAllow}}},
		},
		{
			name:   "args",
			json:   `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8,"valueTwo":0,"op":"SCMP_CMP_EQ"}]}]}`,
			goarch: "amd64",
			want: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 8, Op: specs.OpEqualTo}}}}},
		},
		{name: "no defaultAction", json: `{"syscalls":[]}`, goarch: "amd64", wantErr: "seccomp profile has no defaultAction"},
		{name: "unknown defaultAction", json: `{"defaultAction":"SCMP_ACT_NOPE"}`, goarch: "amd64", wantErr: `seccomp profile: unknown defaultAction "SCMP_ACT_NOPE"`},
		{name: "unknown action names the syscall", json: `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOPE"}]}`, goarch: "amd64", wantErr: `seccomp profile: syscall mkdir: unknown action "SCMP_ACT_NOPE"`},
		{name: "unknown operator", json: `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_ABOUT"}]}]}`, goarch: "amd64", wantErr: `seccomp profile: syscall mkdir: unknown operator "SCMP_CMP_ABOUT"`},
		{name: "arg index out of range", json: `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}`, goarch: "amd64", wantErr: `seccomp profile: syscall mkdir: argument index 6 out of range 0-5`},
		{name: "unknown arch", json: `{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_Z80"]}`, goarch: "amd64", wantErr: `seccomp profile: unknown architecture "SCMP_ARCH_Z80"`},
		{name: "architectures and archMap", json: `{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}`, goarch: "amd64", wantErr: "seccomp profile: both architectures and archMap are given; use one"},
		{name: "name and names", json: `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ERRNO"}]}`, goarch: "amd64", wantErr: "seccomp profile: syscalls[0] gives both name and names"},
		{name: "no names", json: `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"action":"SCMP_ACT_ERRNO"}]}`, goarch: "amd64", wantErr: "seccomp profile: syscalls[0] has no names"},
		{name: "bad minKernel", json: `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_ERRNO","includes":{"minKernel":"new"}}]}`, goarch: "amd64", kernel: "6.1", wantErr: `seccomp profile: syscall x: minKernel: invalid kernel version "new"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var dp dockerProfile
			if err := json.Unmarshal([]byte(tc.json), &dp); err != nil {
				t.Fatalf("test JSON: %v", err)
			}
			got, err := convert(&dp, tc.goarch, capabilities[:], kernel(tc.kernel))
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			gotJ, _ := json.Marshal(got)
			wantJ, _ := json.Marshal(tc.want)
			if !bytes.Equal(gotJ, wantJ) {
				t.Errorf("got  %s\nwant %s", gotJ, wantJ)
			}
		})
	}
}

func TestFromDockerJSONRejectsGarbage(t *testing.T) {
	for _, in := range []string{``, `[]`, `{"defaultAction":"SCMP_ACT_ALLOW"} {}`, `{"defaultAction":1}`} {
		if _, err := FromDockerJSON([]byte(in)); err == nil {
			t.Errorf("FromDockerJSON(%q) = nil error", in)
		}
	}
}

func TestCapabilitiesIsACopy(t *testing.T) {
	c := Capabilities()
	c[0] = "CAP_SYS_ADMIN"
	if Capabilities()[0] != "CAP_CHOWN" {
		t.Fatal("Capabilities exposes package state")
	}
}

func TestParseKernelVersion(t *testing.T) {
	for in, want := range map[string]kernelVersion{
		"6.1": {6, 1}, "6.1.0-18-amd64": {6, 1}, "6.18.44-fc-v445": {6, 18}, "5.10+": {5, 10},
	} {
		got, err := parseKernelVersion(in)
		if err != nil || got != want {
			t.Errorf("parseKernelVersion(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "6", "x.1", "6.x"} {
		if _, err := parseKernelVersion(in); err == nil {
			t.Errorf("parseKernelVersion(%q) = nil error", in)
		}
	}
}

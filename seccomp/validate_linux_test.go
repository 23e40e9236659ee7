//go:build linux && cgo

package seccomp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/isol8/isol8/internal/testenv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// helperEnv makes the test binary act as the filtered helper process: it
// loads the profile named by the variable ("strict" or a custom file path),
// probes syscalls and prints one "name result" line per probe.
const helperEnv = "ISOL8_SECCOMP_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(seccompHelper(mode))
	}
	os.Exit(m.Run())
}

func TestValidate(t *testing.T) {
	u := func(n uint) *uint { return &n }
	def := mustDefault(t)
	for _, tc := range []struct {
		name    string
		p       *specs.LinuxSeccomp
		wantErr string // substring; "" = valid
	}{
		{name: "default profile", p: def},
		{name: "allow all", p: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}},
		{name: "unknown names are skipped like runc", p: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"no_such_syscall", "mkdir"}, Action: specs.ActErrno}}}},
		{name: "rule equal to default is skipped", p: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno}}}},
		{name: "same-argument conditions become OR rules", p: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"socket"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: 1, Op: specs.OpEqualTo}, {Index: 0, Value: 2, Op: specs.OpEqualTo}}}}}},
		{name: "nil", p: nil, wantErr: "nil seccomp profile"},
		{name: "bad default action", p: &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_NOPE"}, wantErr: `defaultAction: unknown action "SCMP_ACT_NOPE"`},
		{name: "bad action names syscall", p: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: "SCMP_ACT_NOPE"}}}, wantErr: `syscall mkdir: unknown action "SCMP_ACT_NOPE"`},
		{name: "bad operator", p: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_ABOUT"}}}}}, wantErr: `syscall mkdir: unknown operator`},
		{name: "bad arg index", p: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 7, Op: specs.OpEqualTo}}}}}, wantErr: "syscall mkdir: argument index 7"},
		{name: "errno out of range", p: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno, ErrnoRet: u(70000)}}}, wantErr: "syscall mkdir: SCMP_ACT_ERRNO: errnoRet 70000 out of range"},
		{name: "bad architecture", p: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{"SCMP_ARCH_Z80"}}, wantErr: "architecture SCMP_ARCH_Z80"},
		{name: "notify", p: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActNotify}}}, wantErr: "syscall mkdir: SCMP_ACT_NOTIFY is not supported"},
		{name: "unknown flag", p: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_NOPE"}}, wantErr: "flag SECCOMP_FILTER_FLAG_NOPE: not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.p)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

// TestLoadedProfile loads profiles into a re-executed copy of the test
// binary (never into the test process itself) and checks what the kernel
// answers. Root matters: as root, mount, keyctl, bpf and friends would
// otherwise succeed or fail with other errnos, so EPERM proves the filter.
func TestLoadedProfile(t *testing.T) {
	testenv.MustHaveRoot(t)
	if _, err := os.Stat("/bin/true"); err != nil {
		t.Skip("needs /bin/true")
	}
	custom := filepath.Join(t.TempDir(), "deny-mkdir.json")
	if err := os.WriteFile(custom, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode string
		want map[string]string
	}{
		{mode: "strict", want: map[string]string{
			"seccomp_mode":      "2",
			"no_new_privs":      "1",
			"mount":             "EPERM",
			"umount2":           "EPERM",
			"unshare_newuser":   "EPERM",
			"unshare_newns":     "EPERM",
			"setns":             "EPERM",
			"keyctl":            "EPERM",
			"add_key":           "EPERM",
			"bpf":               "EPERM",
			"ptrace_peek":       "EPERM",
			"perf_event_open":   "EPERM",
			"userfaultfd":       "EPERM",
			"process_vm_readv":  "EPERM",
			"clone_newuser":     "EPERM",
			"clone3":            "ENOSYS",
			"socket_alg":        "EPERM",
			"getpid":            "ok",
			"write":             "ok",
			"openat":            "ok",
			"mkdirat":           "ok",
			"exec_true":         "ok",
			"socket_unix":       "ok",
			"pidfd_open":        "ok",
			"setresuid_same":    "ok",
			"personality_query": "ok",
			"personality_bad":   "EPERM",
			"clock_gettime":     "ok",
			"name_to_handle_at": "EPERM",
			"get_mempolicy":     "EPERM",
			"open_by_handle_at": "EPERM",
			"syslog":            "EPERM",
			"reboot":            "EPERM",
			"pivot_root":        "EPERM",
			"kcmp":              "EPERM",
			"clock_settime":     "EPERM",
			"init_module":       "EPERM",
			"settimeofday":      "EPERM",
			"acct":              "EPERM",
			"quotactl":          "EPERM",
			"swapon":            "EPERM",
			"iopl":              "EPERM",
			"kexec_load":        "EPERM",
			"move_pages":        "EPERM",
			"lookup_dcookie":    "EPERM",
			"request_key":       "EPERM",
			"mbind":             "EPERM",
			"set_mempolicy":     "EPERM",
			"delete_module":     "EPERM",
			"finit_module":      "EPERM",
			"clock_adjtime":     "EPERM",
			"process_vm_writev": "EPERM",
			"open_tree":         "EPERM",
			"fsopen":            "EPERM",
			"chroot":            "EPERM",
			"sethostname":       "EPERM",
			"kexec_file_load":   "EPERM",
			"ioperm":            "EPERM",
			"io_uring_setup":    "EPERM",
			"clone_thread":      "ok",
		}},
		{mode: custom, want: map[string]string{
			"seccomp_mode": "2",
			"mkdirat":      "EPERM",
			"mount":        "ENOENT", // allowed by this profile: the kernel's own answer
			"getpid":       "ok",
			"exec_true":    "ok",
		}},
	} {
		t.Run(filepath.Base(tc.mode), func(t *testing.T) {
			got := runHelper(t, tc.mode)
			for name, want := range tc.want {
				if got[name] != want {
					t.Errorf("%s: got %q, want %q", name, got[name], want)
				}
			}
		})
	}
}

func runHelper(t *testing.T, mode string) map[string]string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "ISOL8_SECCOMP_TEST_DIR="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	got := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if name, res, ok := strings.Cut(sc.Text(), " "); ok {
			got[name] = res
		}
	}
	return got
}

// seccompHelper runs in the re-executed test binary. It must not call
// testing APIs.
func seccompHelper(mode string) int {
	var (
		p   *specs.LinuxSeccomp
		err error
	)
	if mode == "strict" {
		p, err = Profile(ModeStrict, "")
	} else {
		p, err = Profile(ModeCustom, mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return 2
	}
	f, err := buildFilter(p)
	if err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		return 2
	}
	if err := f.SetNoNewPrivsBit(true); err != nil {
		fmt.Fprintln(os.Stderr, "nnp:", err)
		return 2
	}
	if err := f.Load(); err != nil { // all threads (TSYNC)
		fmt.Fprintln(os.Stderr, "load:", err)
		return 2
	}
	f.Release()

	dir := os.Getenv("ISOL8_SECCOMP_TEST_DIR")
	res := func(err error) string {
		var errno syscall.Errno
		switch {
		case err == nil:
			return "ok"
		case errors.As(err, &errno):
			return unix.ErrnoName(errno)
		default:
			return "error:" + strings.ReplaceAll(err.Error(), " ", "_")
		}
	}
	// sys makes a raw syscall by name, numbered by libseccomp for this
	// architecture, so the probes need no per-architecture constants.
	sys := func(name string, a ...uintptr) error {
		nr, err := libseccomp.GetSyscallFromName(name)
		if err != nil || nr < 0 {
			return fmt.Errorf("no syscall %s on this architecture", name)
		}
		var args [6]uintptr
		copy(args[:], a)
		_, _, e := unix.Syscall6(uintptr(nr), args[0], args[1], args[2], args[3], args[4], args[5])
		if e != 0 {
			return e
		}
		return nil
	}
	status := func(field string) string {
		b, err := os.ReadFile("/proc/self/status")
		if err != nil {
			return res(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, field+":"); ok {
				return strings.TrimSpace(v)
			}
		}
		return "missing"
	}
	missingDir := "/nonexistent-isol8-seccomp-test"
	probes := []struct {
		name string
		fn   func() string
	}{
		{"seccomp_mode", func() string { return status("Seccomp") }},
		{"no_new_privs", func() string { return status("NoNewPrivs") }},
		// Each denied probe uses arguments the kernel would reject with
		// another errno (or harmlessly accept), so EPERM can only come
		// from the filter.
		{"mount", func() string { return res(unix.Mount("none", missingDir, "tmpfs", 0, "")) }},
		{"umount2", func() string { return res(unix.Unmount(missingDir, 0)) }},
		{"unshare_newuser", func() string { return res(unix.Unshare(unix.CLONE_NEWUSER)) }},
		{"unshare_newns", func() string { return res(unix.Unshare(unix.CLONE_NEWNS)) }},
		{"setns", func() string { return res(unix.Setns(-1, 0)) }},
		{"keyctl", func() string {
			_, err := unix.KeyctlInt(unix.KEYCTL_GET_KEYRING_ID, unix.KEY_SPEC_SESSION_KEYRING, 0, 0, 0)
			return res(err)
		}},
		{"add_key", func() string { return res(sys("add_key")) }},
		{"request_key", func() string { return res(sys("request_key")) }},
		{"bpf", func() string { return res(sys("bpf", unix.BPF_MAP_CREATE, 0, 0)) }},
		{"ptrace_peek", func() string { return res(sys("ptrace", unix.PTRACE_PEEKDATA, 1, 0, 0)) }},
		{"perf_event_open", func() string { return res(sys("perf_event_open", 0, 0, ^uintptr(0), ^uintptr(0), 0)) }},
		{"userfaultfd", func() string { return res(sys("userfaultfd", ^uintptr(0))) }},
		{"process_vm_readv", func() string { return res(sys("process_vm_readv", 1, 0, 0, 0, 0, 0)) }},
		{"process_vm_writev", func() string { return res(sys("process_vm_writev", 1, 0, 0, 0, 0, 0)) }},
		{"name_to_handle_at", func() string { return res(sys("name_to_handle_at", ^uintptr(0), 0, 0, 0, 0)) }},
		{"open_by_handle_at", func() string { return res(sys("open_by_handle_at", ^uintptr(0), 0, 0)) }},
		{"get_mempolicy", func() string { return res(sys("get_mempolicy", 0, 0, 0, 0, ^uintptr(0))) }},
		{"set_mempolicy", func() string { return res(sys("set_mempolicy", ^uintptr(0), 0, 0)) }},
		{"mbind", func() string { return res(sys("mbind", 0, 0, ^uintptr(0), 0, 0, 0)) }},
		{"move_pages", func() string { return res(sys("move_pages", 0, 1, 0, 0, 0, ^uintptr(0))) }},
		{"syslog", func() string { return res(sys("syslog", ^uintptr(0), 0, 0)) }},
		{"reboot", func() string { return res(sys("reboot", 0, 0, 0, 0)) }},
		{"pivot_root", func() string { return res(sys("pivot_root", 0, 0)) }},
		{"kcmp", func() string { return res(sys("kcmp", 0, 0, ^uintptr(0), 0, 0)) }},
		{"clock_settime", func() string { return res(sys("clock_settime", ^uintptr(0), 0)) }},
		{"clock_adjtime", func() string { return res(sys("clock_adjtime", ^uintptr(0), 0)) }},
		{"settimeofday", func() string { return res(sys("settimeofday", 0, 0)) }},
		{"init_module", func() string { return res(sys("init_module", 0, 0, 0)) }},
		{"finit_module", func() string { return res(sys("finit_module", ^uintptr(0), 0, 0)) }},
		{"delete_module", func() string { return res(sys("delete_module", 0, 0)) }},
		{"acct", func() string { return res(sys("acct", 1)) }},
		{"quotactl", func() string { return res(sys("quotactl", 0, 0, 0, 0)) }},
		{"swapon", func() string { return res(sys("swapon", 0, 0)) }},
		{"iopl", func() string { return res(sys("iopl", 99)) }},
		{"ioperm", func() string { return res(sys("ioperm", ^uintptr(0), 1, 0)) }},
		{"kexec_load", func() string { return res(sys("kexec_load", 0, ^uintptr(0), 0, ^uintptr(0))) }},
		{"kexec_file_load", func() string { return res(sys("kexec_file_load", ^uintptr(0), ^uintptr(0), 0, 0, ^uintptr(0))) }},
		{"lookup_dcookie", func() string { return res(sys("lookup_dcookie", 0, 0, 0)) }},
		{"open_tree", func() string { return res(sys("open_tree", ^uintptr(0), 0, ^uintptr(0))) }},
		{"fsopen", func() string { return res(sys("fsopen", 0, ^uintptr(0))) }},
		{"chroot", func() string { return res(unix.Chroot(missingDir)) }},
		{"sethostname", func() string { return res(sys("sethostname", 0, ^uintptr(0))) }},
		{"io_uring_setup", func() string { return res(sys("io_uring_setup", 0, 0)) }},
		{"clone_newuser", func() string {
			c := exec.Command("/bin/true")
			c.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}
			return res(c.Run())
		}},
		{"clone3", func() string { return res(sys("clone3", 0, 0)) }},
		{"socket_alg", func() string {
			fd, err := unix.Socket(unix.AF_ALG, unix.SOCK_SEQPACKET, 0)
			if err == nil {
				unix.Close(fd)
			}
			return res(err)
		}},
		// Allowed.
		{"personality_query", func() string { return res(sys("personality", 0xffffffff)) }},
		{"getpid", func() string {
			if unix.Getpid() <= 0 {
				return "bad-pid"
			}
			return "ok"
		}},
		{"write", func() string { _, err := unix.Write(2, nil); return res(err) }},
		{"openat", func() string {
			fd, err := unix.Openat(unix.AT_FDCWD, "/proc/self/status", unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err == nil {
				unix.Close(fd)
			}
			return res(err)
		}},
		{"mkdirat", func() string { return res(unix.Mkdirat(unix.AT_FDCWD, filepath.Join(dir, "d"), 0o755)) }},
		{"exec_true", func() string { return res(exec.Command("/bin/true").Run()) }},
		{"socket_unix", func() string {
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err == nil {
				unix.Close(fds[0])
				unix.Close(fds[1])
			}
			return res(err)
		}},
		{"pidfd_open", func() string {
			fd, err := unix.PidfdOpen(os.Getpid(), 0)
			if err == nil {
				unix.Close(fd)
			}
			return res(err)
		}},
		{"setresuid_same", func() string { return res(unix.Setresuid(-1, -1, -1)) }},
		{"clock_gettime", func() string { var ts unix.Timespec; return res(unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)) }},
		{"clone_thread", func() string {
			// Locked, blocking goroutines make the runtime start OS threads
			// (clone with CLONE_THREAD); threads end with their goroutines.
			done := make(chan error)
			for range 4 {
				go func() {
					runtime.LockOSThread()
					done <- unix.Nanosleep(&unix.Timespec{Nsec: 10_000_000}, nil)
				}()
			}
			var err error
			for range 4 {
				err = errors.Join(err, <-done)
			}
			return res(err)
		}},
		// Last: where allowed it really changes the personality.
		{"personality_bad", func() string { return res(sys("personality", 0x0400000)) }},
	}
	for _, pr := range probes {
		fmt.Printf("%s %s\n", pr.name, pr.fn())
	}
	return 0
}

package seccomp

import (
	"bytes"
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// hostArch names this host's architecture the two ways Docker profiles do:
// in includes/excludes.arches and in archMap.
var hostArch = map[string]struct {
	docker  string
	seccomp specs.Arch
}{
	"amd64": {"amd64", specs.ArchX86_64},
	"arm64": {"arm64", specs.ArchAARCH64},
	"386":   {"x86", specs.ArchX86},
}

// TestConvert runs Docker-format profiles through the real loader on this
// host: native architecture, running kernel, the init agent's capabilities.
func TestConvert(t *testing.T) {
	native, ok := hostArch[runtime.GOARCH]
	if !ok {
		t.Skipf("no architecture rows for GOARCH %s", runtime.GOARCH)
	}
	// NATIVE and NATIVE_ARCH stand for this host; s390x is foreign on
	// every host in hostArch.
	expand := strings.NewReplacer("NATIVE_ARCH", string(native.seccomp), "NATIVE", native.docker).Replace
	u := func(n uint) *uint { return &n }
	allow := func(name string) specs.LinuxSyscall {
		return specs.LinuxSyscall{Names: []string{name}, Action: specs.ActAllow}
	}
	for _, tc := range []struct {
		name    string
		json    string
		want    *specs.LinuxSeccomp
		wantErr string // substring
	}{
		{
			name: "legacy name and errnoRet",
			json: `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"mkdir","action":"SCMP_ACT_ERRNO","errnoRet":13}]}`,
			want: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"mkdir"}, Action: specs.ActErrno, ErrnoRet: u(13)}}},
		},
		{
			name: "archMap picks the native entry",
			json: `{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"archMap":[
				{"architecture":"SCMP_ARCH_S390X","subArchitectures":["SCMP_ARCH_S390"]},
				{"architecture":"NATIVE_ARCH","subArchitectures":["SCMP_ARCH_X32"]}],"syscalls":[]}`,
			want: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: u(1),
				Architectures: []specs.Arch{native.seccomp, specs.ArchX32}},
		},
		{
			name: "architectures as is",
			json: `{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_S390X","SCMP_ARCH_S390"],"syscalls":[]}`,
			want: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
				Architectures: []specs.Arch{specs.ArchS390X, specs.ArchS390}},
		},
		{
			name: "includes and excludes by arch",
			json: `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
				{"names":["arch_prctl"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["NATIVE","x32"]}},
				{"names":["s390_runtime_instr"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["s390","s390x"]}},
				{"names":["modify_ldt"],"action":"SCMP_ACT_ALLOW","excludes":{"arches":["NATIVE"]}},
				{"names":["clone"],"action":"SCMP_ACT_ALLOW","excludes":{"arches":["s390x"]}}]}`,
			want: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
				allow("arch_prctl"), allow("clone")}},
		},
		{
			// The bounding set is Capabilities(): CHOWN, DAC_OVERRIDE,
			// FOWNER, KILL, SETUID, SETGID.
			name: "includes and excludes by capability",
			json: `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
				{"names":["mount"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}},
				{"names":["kill"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_KILL"]}},
				{"names":["fchown"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_CHOWN","CAP_FOWNER"]}},
				{"names":["chown"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_CHOWN","CAP_SYS_ADMIN"]}},
				{"names":["ptrace"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_PTRACE"]}},
				{"names":["clone"],"action":"SCMP_ACT_ALLOW","excludes":{"caps":["CAP_SYS_ADMIN"]}},
				{"names":["setuid"],"action":"SCMP_ACT_ALLOW","excludes":{"caps":["CAP_SETUID"]}},
				{"names":["tgkill"],"action":"SCMP_ACT_ALLOW","excludes":{"caps":["CAP_SYS_PTRACE","CAP_KILL"]}}]}`,
			want: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
				allow("kill"), allow("fchown"), allow("clone")}},
		},
		{
			// Every running kernel is at least 1.0 and below 255.255 (the
			// largest version moby's loader parses).
			name: "includes and excludes by kernel",
			json: `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
				{"names":["ptrace"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"1.0"}},
				{"names":["futex_waitv"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"255.255"}},
				{"names":["uselib"],"action":"SCMP_ACT_ALLOW","excludes":{"minKernel":"1.0"}},
				{"names":["ustat"],"action":"SCMP_ACT_ALLOW","excludes":{"minKernel":"255.255"}}]}`,
			want: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
				allow("ptrace"), allow("ustat")}},
		},
		{
			name: "args",
			json: `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8,"valueTwo":0,"op":"SCMP_CMP_EQ"}]}]}`,
			want: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 8, Op: specs.OpEqualTo}}}}},
		},
		{
			// Checks run on what this host would load, as runc sees it: a
			// rule dropped here is not examined (Docker behaves the same).
			name: "rules dropped for this host are not checked",
			json: `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["x"],"action":"SCMP_ACT_NOPE","includes":{"arches":["s390x"]}}]}`,
			want: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno},
		},
		{name: "no defaultAction", json: `{"syscalls":[]}`, wantErr: "seccomp profile has no defaultAction"},
		{name: "empty object", json: `{}`, wantErr: "seccomp profile has no defaultAction"},
		{name: "null", json: `null`, wantErr: "seccomp profile has no defaultAction"},
		{name: "no defaultAction with rules", json: `{"syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}`, wantErr: "seccomp profile has no defaultAction"},
		{name: "unknown defaultAction", json: `{"defaultAction":"SCMP_ACT_NOPE"}`, wantErr: `seccomp profile: unknown defaultAction "SCMP_ACT_NOPE"`},
		{name: "unknown action names the syscall", json: `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOPE"}]}`, wantErr: `seccomp profile: syscall mkdir: unknown action "SCMP_ACT_NOPE"`},
		{name: "unknown operator", json: `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_ABOUT"}]}]}`, wantErr: `seccomp profile: syscall mkdir: unknown operator "SCMP_CMP_ABOUT"`},
		{name: "arg index out of range", json: `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}`, wantErr: `seccomp profile: syscall mkdir: argument index 6 out of range 0-5`},
		{name: "unknown arch", json: `{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_Z80"]}`, wantErr: `seccomp profile: unknown architecture "SCMP_ARCH_Z80"`},
		{name: "unknown native sub-architecture", json: `{"defaultAction":"SCMP_ACT_ALLOW","archMap":[{"architecture":"NATIVE_ARCH","subArchitectures":["SCMP_ARCH_Z80"]}]}`, wantErr: `seccomp profile: unknown architecture "SCMP_ARCH_Z80"`},
		{name: "architectures and archMap", json: `{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}`, wantErr: "both 'architectures' and 'archMap'"},
		{name: "name and names", json: `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ERRNO"}]}`, wantErr: "both 'name' and 'names'"},
		{name: "no names", json: `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"action":"SCMP_ACT_ERRNO"}]}`, wantErr: "seccomp profile: a SCMP_ACT_ERRNO rule has no names"},
		{name: "empty name", json: `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir",""],"action":"SCMP_ACT_ERRNO"}]}`, wantErr: "seccomp profile: a SCMP_ACT_ERRNO rule has an empty name"},
		{name: "bad minKernel", json: `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_ERRNO","includes":{"minKernel":"new"}}]}`, wantErr: `invalid kernel version: "new"`},
		{name: "minKernel beyond 255", json: `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_ERRNO","includes":{"minKernel":"999.0"}}]}`, wantErr: `invalid kernel version: "999.0"`},
		{name: "minKernel with a patch level", json: `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_ERRNO","excludes":{"minKernel":"5.10.1"}}]}`, wantErr: `invalid kernel version: "5.10.1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromDockerJSON([]byte(expand(tc.json)))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
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
	for _, in := range []string{``, `[]`, `{"defaultAction":"SCMP_ACT_ALLOW"} {}`, `{"defaultAction":1}`, `null`, `"x"`,
		`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":{}}`, `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[null]}`} {
		if _, err := FromDockerJSON([]byte(in)); err == nil {
			t.Errorf("FromDockerJSON(%q) = nil error", in)
		}
	}
}

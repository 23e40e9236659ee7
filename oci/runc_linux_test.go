package oci

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/isol8/isol8/internal/testenv"
	"github.com/isol8/isol8/seccomp"
)

// probeScript runs inside the container (busybox sh) and prints key=value
// lines about what the spec produced.
const probeScript = `
echo "uid=$(id -u)"
echo "pid=$$"
grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status | tr -d ' \t' | tr ':' '='
touch /x 2>/dev/null && echo rootfs=rw || echo rootfs=ro
echo "firmware=$(ls -A /sys/firmware | wc -l)"
[ -e /proc/kcore ] && echo "kcore=$(head -c1 /proc/kcore | wc -c)" || echo kcore=absent
for p in /proc/acpi /proc/asound /proc/kcore /proc/keys /proc/latency_stats /proc/timer_list /proc/timer_stats /proc/sched_debug /proc/scsi /sys/firmware /sys/devices/virtual/powercap /sys/kernel; do
  if [ ! -e $p ]; then echo "mask:$p=absent"
  elif grep -q " $p " /proc/self/mountinfo; then echo "mask:$p=masked"
  else echo "mask:$p=open"; fi
done
echo "keys=$(cat /proc/keys | wc -c)"
echo hi > /sandbox/f && echo sandbox=rw || echo sandbox=ro
echo "sandbox_owner=$(stat -c %u:%g /sandbox)"
cp /.isol8-init /sandbox/true && /sandbox/true && echo sandbox_exec=yes || echo sandbox_exec=no
cp /.isol8-init /tmp/true && { /tmp/true 2>/dev/null && echo tmp_exec=yes || echo tmp_exec=no; }
{ echo x > /.isol8-init; } 2>/dev/null && echo init=rw || echo init=ro
{ echo 1 > /proc/sys/kernel/domainname; } 2>/dev/null && echo procsys=rw || echo procsys=ro
mount -t tmpfs none /mnt 2>/dev/null && echo mount=yes || echo mount=no
unshare -n true 2>/dev/null && echo unshare=yes || echo unshare=no
mknod /sandbox/sda b 8 0 2>/dev/null && echo mknod=yes || echo mknod=no
{ echo > /dev/null; } 2>/dev/null && echo devnull=ok || echo devnull=fail
echo "netifs=$(ls /sys/class/net | tr '\n' ' ')"
echo "hostname=$(hostname)"
echo "nofile=$(ulimit -n)"
if [ -e /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
  echo "mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"
  echo "memsw=$(cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes 2>/dev/null || echo unsupported)"
  echo "pids=$(cat /sys/fs/cgroup/pids/pids.max)"
  echo "oom_control=$(head -n1 /sys/fs/cgroup/memory/memory.oom_control | tr ' ' '_')"
  touch /sys/fs/cgroup/memory/x 2>/dev/null && echo cgroupfs=rw || echo cgroupfs=ro
else
  echo "mem=$(cat /sys/fs/cgroup/memory.max)"
  echo "memsw=$(cat /sys/fs/cgroup/memory.swap.max)"
  echo "pids=$(cat /sys/fs/cgroup/pids.max)"
  echo "oom_control=$(grep oom_kill /sys/fs/cgroup/memory.events | head -n1 | tr ' ' '_')"
  touch /sys/fs/cgroup/x 2>/dev/null && echo cgroupfs=rw || echo cgroupfs=ro
fi
echo "resolv=$(cat /etc/resolv.conf 2>/dev/null | wc -c)"
`

var applets = strings.Fields("sh id grep tr touch ls wc head cat stat cp true mount unshare mknod hostname")

// TestRunc runs specs from New under the real runc: the rootfs holds only
// symlinks to /.isol8-init, which WithInit bind-mounts from a static
// busybox on the host.
func TestRunc(t *testing.T) {
	testenv.MustHaveRoot(t)
	testenv.MustHaveCommand(t, "runc")
	busybox := staticBusybox(t)

	const mem = 128 << 20
	v1 := dirExists("/sys/fs/cgroup/memory")
	memsw := fmt.Sprint(mem) // v1: memory+swap equal to memory
	if !v1 {
		memsw = "0" // v2: no swap on top
	}
	if v1 && !fileExists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes") {
		memsw = "unsupported"
	}
	// Default, not Profile: no cgo needed here, and runc compiles and
	// loads it itself.
	strict, err := seccomp.Default()
	if err != nil {
		t.Fatal(err)
	}
	hostResolv := fileSize("/etc/resolv.conf")

	for _, tc := range []struct {
		name    string
		opts    []Opt
		hostNet bool
		want    map[string]string
	}{
		{
			name: "baseline with strict seccomp",
			opts: []Opt{WithSeccomp(strict), WithMemory(mem), WithPids(32), WithHostname("isol8-test"), WithNetwork("none", "")},
			want: map[string]string{
				"uid":           "0",
				"pid":           "1",
				"CapEff":        "00000000000001eb", // CHOWN DAC_OVERRIDE FOWNER KILL SETGID SETUID SETPCAP (the agent drops SETPCAP and the bounding set at start)
				"CapPrm":        "00000000000001eb",
				"CapBnd":        "00000000000001eb",
				"CapInh":        "0000000000000000",
				"CapAmb":        "0000000000000000",
				"NoNewPrivs":    "1",
				"Seccomp":       "2",
				"rootfs":        "ro",
				"firmware":      "0",
				"keys":          "0",
				"sandbox":       "rw",
				"sandbox_owner": "100:101",
				"sandbox_exec":  "yes",
				"tmp_exec":      "no",
				"init":          "ro",
				"procsys":       "ro",
				"mount":         "no",
				"unshare":       "no",
				"mknod":         "no",
				"devnull":       "ok",
				"netifs":        "lo",
				"hostname":      "isol8-test",
				"nofile":        "1024",
				"mem":           fmt.Sprint(mem),
				"memsw":         memsw,
				"pids":          "32",
				"cgroupfs":      "ro",
				"resolv":        "0",
			},
		},
		{
			name:    "host network, writable root, unconfined",
			hostNet: true,
			opts:    []Opt{WithNetwork("host", ""), WithReadonlyRoot(false), WithSeccomp(nil), WithRlimitNofile(2048)},
			want: map[string]string{
				"uid":        "0",
				"CapEff":     "00000000000001eb",
				"NoNewPrivs": "1",
				"Seccomp":    "0",
				"rootfs":     "rw",
				"tmp_exec":   "no",
				"init":       "ro",
				"mount":      "no", // no CAP_SYS_ADMIN, even without seccomp
				"nofile":     "2048",
				"hostname":   "sandbox",
				"resolv":     hostResolv,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := runSpec(t, busybox, tc.opts)
			if k := got["kcore"]; k != "0" && k != "absent" {
				t.Errorf("/proc/kcore readable: %s bytes", k)
			}
			for k, v := range got {
				if strings.HasPrefix(k, "mask:") && v != "masked" && v != "absent" {
					t.Errorf("%s is %s, want masked", strings.TrimPrefix(k, "mask:"), v)
				}
			}
			for _, p := range []string{"/proc/keys", "/sys/firmware", "/sys/kernel"} {
				if got["mask:"+p] != "masked" {
					t.Errorf("%s: got %q, want masked", p, got["mask:"+p])
				}
			}
			if v1 {
				if want := "oom_kill_disable_0"; got["oom_control"] != want {
					t.Errorf("oom_control: got %q, want %q", got["oom_control"], want)
				}
			}
			for k, want := range tc.want {
				if got[k] != want {
					t.Errorf("%s: got %q, want %q", k, got[k], want)
				}
			}
			if tc.hostNet && got["netifs"] == "lo" {
				t.Errorf("host network shows only lo")
			}
		})
	}
}

func runSpec(t *testing.T, busybox string, opts []Opt) map[string]string {
	t.Helper()
	bundle := t.TempDir()
	rootfs := filepath.Join(bundle, "rootfs")
	for _, d := range []string{"bin", "proc", "dev", "sys", "sandbox", "tmp", "etc", "mnt"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(rootfs, ".isol8-init"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range applets {
		if err := os.Symlink(InitPath, filepath.Join(rootfs, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}

	id := fmt.Sprintf("isol8-oci-%d-%d", os.Getpid(), time.Now().UnixNano())
	s, err := New(append([]Opt{WithInit(busybox), WithCgroupsPath("/isol8-test/" + id)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Process.Args; len(got) != 1 || got[0] != InitPath {
		t.Fatalf("WithInit args = %v", got)
	}
	// busybox picks its applet from argv[0]: run sh through a symlink to
	// the init mount.
	s.Process.Args = []string{"/bin/sh", "-c", probeScript}
	cfg, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}

	state := t.TempDir()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 30*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "runc", "--root", state, "delete", "-f", id).CombinedOutput(); err != nil &&
			!strings.Contains(string(out), "does not exist") {
			t.Logf("runc delete %s: %v: %s", id, err, out)
		}
		// Best effort: the parent cgroup stays busy while other tests use it.
		for _, parent := range cgroupParents("isol8-test") {
			_ = os.Remove(parent)
		}
	})

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "runc", "--root", state, "run", "--bundle", bundle, id)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("runc run: %v\nstdout:\n%s\nstderr:\n%s\nconfig:\n%s", err, stdout.String(), stderr.String(), cfg)
	}
	if stderr.Len() > 0 {
		t.Logf("container stderr:\n%s", stderr.String())
	}
	got := map[string]string{}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			got[k] = strings.TrimSpace(v)
		}
	}
	t.Logf("container reported: %v", got)
	return got
}

// staticBusybox returns the host's busybox if it is statically linked (the
// rootfs holds no libc), or skips.
func staticBusybox(t *testing.T) string {
	t.Helper()
	testenv.MustHaveCommand(t, "busybox")
	p, _ := exec.LookPath("busybox")
	p, err := filepath.EvalSymlinks(p)
	if err == nil {
		p, err = filepath.Abs(p)
	}
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			msg := fmt.Sprintf("%s is dynamically linked; needs a static busybox (apt-get install busybox-static)", p)
			if testenv.Strict() {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	return p
}

func cgroupParents(name string) []string {
	out := []string{filepath.Join("/sys/fs/cgroup", name)}
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, filepath.Join("/sys/fs/cgroup", e.Name(), name))
		}
	}
	return out
}

func dirExists(p string) bool  { fi, err := os.Stat(p); return err == nil && fi.IsDir() }
func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func fileSize(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return "0"
	}
	return fmt.Sprint(len(b))
}

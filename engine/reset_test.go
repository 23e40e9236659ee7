package engine

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/isol8/isol8/agent"
	"github.com/isol8/isol8/image"
)

// Regression tests for the fast pool's reset: run A plants state through one
// channel, run B in the same sandbox id must see none of it.

// fastPool returns an engine whose fast pool keeps exactly one sandbox, so
// consecutive runs share a sandbox id.
func fastPool(t *testing.T, opts Options) *Engine {
	if opts.Logger == nil {
		// Debug logs (a failed reset item, say) are shown when the test fails.
		logs := &syncBuffer{}
		opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("engine log:\n%s", logs.String())
			}
		})
	}
	opts.PoolStrategy = PoolFast
	opts.PoolSize = &PoolSize{Clean: 1, Dirty: 1}
	return newTestEngine(t, opts)
}

// plantThenProbe runs plant, then probe, and insists both ran in the same
// sandbox. It returns the probe's stdout.
func plantThenProbe(t *testing.T, e *Engine, plant, probe Request) string {
	t.Helper()
	a := run(t, e, plant)
	if a.ExitCode != 0 || !strings.Contains(a.Stdout, "planted") {
		t.Fatalf("plant: exit %d stdout %q stderr %q", a.ExitCode, a.Stdout, a.Stderr)
	}
	b := run(t, e, probe)
	if b.ContainerID != a.ContainerID {
		t.Fatalf("fast pool did not reuse the sandbox: %s then %s", a.ContainerID, b.ContainerID)
	}
	if b.ExitCode != 0 {
		t.Fatalf("probe: exit %d stdout %q stderr %q", b.ExitCode, b.Stdout, b.Stderr)
	}
	return b.Stdout
}

const sysvPlant = `
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
IPC_CREAT = 0o1000
shm = libc.shmget(0x1234, 4096, IPC_CREAT | 0o666)
addr = libc.shmat(shm, None, 0)
ctypes.memmove(addr, b"shm-secret", 10)
libc.shmdt(ctypes.c_void_p(addr))
class Msg(ctypes.Structure):
    _fields_ = [("mtype", ctypes.c_long), ("mtext", ctypes.c_char * 16)]
q = libc.msgget(0x1235, IPC_CREAT | 0o666)
m = Msg(1, b"msg-secret")
if libc.msgsnd(q, ctypes.byref(m), 16, 0) != 0:
    raise OSError(ctypes.get_errno(), "msgsnd")
if libc.semget(0x1236, 1, IPC_CREAT | 0o666) < 0:
    raise OSError(ctypes.get_errno(), "semget")
print("planted")
`

const sysvProbe = `
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
shm = libc.shmget(0x1234, 0, 0)
if shm >= 0:
    addr = libc.shmat(shm, None, 0)
    print("shm", ctypes.string_at(addr, 10))
q = libc.msgget(0x1235, 0)
if q >= 0:
    class Msg(ctypes.Structure):
        _fields_ = [("mtype", ctypes.c_long), ("mtext", ctypes.c_char * 16)]
    m = Msg()
    if libc.msgrcv(q, ctypes.byref(m), 16, 0, 0o4000) >= 0:
        print("msg", m.mtext)
if libc.semget(0x1236, 0, 0) >= 0:
    print("sem found")
for kind in ("shm", "msg", "sem"):
    lines = open("/proc/sysvipc/" + kind).read().splitlines()[1:]
    if lines:
        print(kind, "objects", len(lines))
print("probed")
`

func TestFastPoolResetSysVIPC(t *testing.T) { matrix(t, testFastPoolResetSysVIPC) }

func testFastPoolResetSysVIPC(t *testing.T, b backend) {
	e := fastPool(t, Options{})
	mustHaveImage(t, e, "python")
	out := plantThenProbe(t, e, Request{Runtime: "python", Code: sysvPlant}, Request{Runtime: "python", Code: sysvProbe})
	if out != "probed" {
		t.Fatalf("run B sees run A's SysV IPC objects:\n%s", out)
	}
}

// A shared memory segment counts against the sandbox's memory cgroup: one
// left behind would make the next run's allocations fail.
func TestFastPoolResetBigSharedMemory(t *testing.T) {
	e := fastPool(t, Options{MemoryLimit: "256m"})
	mustHaveImage(t, e, "python")
	plant := `
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
size = 180 << 20
shm = libc.shmget(0x4321, size, 0o1000 | 0o600)
addr = libc.shmat(shm, None, 0)
ctypes.memset(addr, 1, size)
print("planted")
`
	probe := "x = bytearray(160 << 20)\nx[::4096] = b'\\x01' * len(x[::4096])\nprint('allocated')"
	a := run(t, e, Request{Runtime: "python", Code: plant, TimeoutMs: 20000})
	if a.Stdout != "planted" {
		t.Fatalf("plant: exit %d stdout %q stderr %q", a.ExitCode, a.Stdout, a.Stderr)
	}
	b := run(t, e, Request{Runtime: "python", Code: probe, TimeoutMs: 20000})
	if b.ContainerID != a.ContainerID {
		t.Fatalf("fast pool did not reuse the sandbox: %s then %s", a.ContainerID, b.ContainerID)
	}
	if b.Stdout != "allocated" || b.OOMKilled {
		t.Fatalf("run B could not allocate after run A's segment: exit %d oom %v stdout %q stderr %q",
			b.ExitCode, b.OOMKilled, b.Stdout, b.Stderr)
	}
}

// An in-flight SCM_RIGHTS cycle keeps sockets alive after every process of
// run A is gone: a TCP listener, an abstract unix listener, and the pair
// that carries them.
const socketPlant = `
import array, socket
l = socket.socket()
l.bind(("127.0.0.1", 8080))
l.listen()
u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
u.bind("\0isol8-leak")
u.listen()
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
fds = array.array("i", [l.fileno(), u.fileno(), a.fileno(), b.fileno()])
a.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
b.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
for s in (l, u, a, b):
    s.close()
print("planted")
`

const socketProbe = `
import socket
def attempt(name, fn):
    try:
        fn()
    except OSError as e:
        return
    print(name)
def bind_tcp():
    s = socket.socket(); s.bind(("127.0.0.1", 8080)); s.close()
def bind_abstract():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind("\0isol8-leak"); s.close()
def connect_tcp():
    s = socket.socket(); s.settimeout(1); s.connect(("127.0.0.1", 8080)); s.close()
def connect_abstract():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect("\0isol8-leak"); s.close()
attempt("connect tcp ok", connect_tcp)
attempt("connect abstract ok", connect_abstract)
try:
    bind_tcp()
except OSError as e:
    print("bind tcp", e.strerror)
try:
    bind_abstract()
except OSError as e:
    print("bind abstract", e.strerror)
for f in ("tcp", "tcp6", "udp", "udp6", "unix", "raw"):
    lines = open("/proc/net/" + f).read().splitlines()[1:]
    if lines:
        print(f, "sockets", len(lines))
print("probed")
`

func TestFastPoolResetSockets(t *testing.T) { matrix(t, testFastPoolResetSockets) }

func testFastPoolResetSockets(t *testing.T, b backend) {
	e := fastPool(t, Options{})
	mustHaveImage(t, e, "python")
	out := plantThenProbe(t, e, Request{Runtime: "python", Code: socketPlant}, Request{Runtime: "python", Code: socketProbe})
	if out != "probed" {
		t.Fatalf("run B sees run A's sockets:\n%s", out)
	}
}

func TestFastPoolResetSandboxAttributes(t *testing.T) {
	e := fastPool(t, Options{})
	mustHaveImage(t, e, "python")
	plant := `
import os
os.setxattr("/sandbox", "user.leak", b"secret")
os.utime("/sandbox", (1234567890, 1234567890))
os.chmod("/sandbox", 0o700)
print("planted")
`
	probe := `
import os, time
st = os.stat("/sandbox")
print("xattrs", os.listxattr("/sandbox"))
print("mode", oct(st.st_mode & 0o7777), "owner", st.st_uid, st.st_gid)
print("mtime recent", abs(time.time() - st.st_mtime) < 3600, "atime recent", abs(time.time() - st.st_atime) < 3600)
`
	out := plantThenProbe(t, e, Request{Runtime: "python", Code: plant}, Request{Runtime: "python", Code: probe + "\nprint('probed')"})
	want := "xattrs []\nmode 0o755 owner 100 101\nmtime recent True atime recent True\nprobed"
	if out != want {
		t.Fatalf("run B sees run A's marks on /sandbox:\n%s\nwant:\n%s", out, want)
	}
}

// TestResetCost measures the reset (the engine's round trip to the agent's
// whole checklist) over 50 resets of one sandbox, each after a small
// execution, and logs p50/p95 overall and per item. Run with -v to see them.
func TestResetCost(t *testing.T) {
	e := newTestEngine(t, Options{PoolSize: noPool})
	mustHaveImage(t, e, "bash")
	sb, err := e.newSandbox(t.Context(), image.Name("bash"), "bash")
	if err != nil {
		t.Fatal(err)
	}
	defer e.destroy(context.Background(), sb)
	const n = 50
	var total []time.Duration
	perItem := map[string][]time.Duration{}
	for i := 0; i < n; i++ {
		ex := agent.Exec{Argv: []string{"sh", "-c", "echo x > /sandbox/f; sleep 0.001 & true"}, Dir: agent.SandboxDir}
		if _, err := sb.conn.exec(t.Context(), ex, nil, 10*time.Second, nil); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		rep, err := sb.conn.reset(t.Context())
		total = append(total, time.Since(start))
		if err != nil {
			t.Fatalf("reset %d: %v", i, err)
		}
		for _, it := range rep.Items {
			perItem[it.Name] = append(perItem[it.Name], time.Duration(it.Micros)*time.Microsecond)
		}
	}
	p50, p95 := percentiles(total)
	t.Logf("reset over %d runs: p50 %s, p95 %s", n, p50, p95)
	for _, name := range agent.ResetItems {
		a, b := percentiles(perItem[name])
		t.Logf("  %-15s p50 %8s  p95 %8s", name, a, b)
	}
	if p95 > time.Second {
		t.Fatalf("reset p95 %s", p95)
	}
}

func percentiles(d []time.Duration) (p50, p95 time.Duration) {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)*95/100]
}

// A sandbox the reset cannot verify clean is destroyed, not reused, and the
// failed item is logged at debug level. A TCP TIME_WAIT entry (the client
// closed first) outlives every process for a minute and fails "sockets".
func TestFastPoolDestroysUnverifiedSandbox(t *testing.T) {
	var logs syncBuffer
	e := fastPool(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	mustHaveImage(t, e, "python")
	a := run(t, e, Request{Runtime: "python", Code: `
import socket
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
c = socket.create_connection(l.getsockname()); s, _ = l.accept()
c.close(); s.close(); l.close()
print("planted")`})
	if a.Stdout != "planted" {
		t.Fatalf("plant: %q %q", a.Stdout, a.Stderr)
	}
	b := run(t, e, Request{Runtime: "python", Code: `print(open("/proc/net/sockstat").read().split("\n")[1])`})
	if b.ContainerID == a.ContainerID {
		t.Fatalf("sandbox %s reused with a TIME_WAIT socket left: %q", a.ContainerID, b.Stdout)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "item=sockets") {
		if time.Now().After(deadline) {
			t.Fatalf("no debug log naming the failed item; logs:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

package userns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
)

func testConfig(t *testing.T, count int) Config {
	return Config{Base: 2_000_000, Size: MinSize, Count: count, Dir: filepath.Join(t.TempDir(), "userns")}
}

func newAlloc(t *testing.T, cfg Config) *Allocator {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.inUse = func(lo, hi uint64) (bool, error) { return false, nil }
	return a
}

func TestValidate(t *testing.T) {
	good := Config{}.WithDefaults()
	if err := good.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	bad := map[string]Config{
		"root":       {Base: 0, Size: DefaultSize, Count: 1, Dir: "/x"},
		"small":      {Base: 1, Size: MinSize - 1, Count: 1, Dir: "/x"},
		"no slots":   {Base: 1, Size: MinSize, Count: 0, Dir: "/x"},
		"overflow":   {Base: 4_000_000_000, Size: DefaultSize, Count: 5000, Dir: "/x"},
		"last id":    {Base: 1<<32 - 1 - MinSize + 1, Size: MinSize, Count: 1, Dir: "/x"},
		"rel dir":    {Base: 1, Size: MinSize, Count: 1, Dir: "state"},
		"empty dir":  {Base: 1, Size: MinSize, Count: 1},
		"huge count": {Base: 1_000_000, Size: DefaultSize, Count: 1 << 20, Dir: "/x"},
	}
	for name, c := range bad {
		if err := c.Validate(); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%s: Validate(%+v) = %v, want invalid argument", name, c, err)
		}
	}
}

// TestAllocateDistinctConcurrent: concurrent allocations, from two
// allocators sharing a state directory as two processes would, never hand
// out one range twice.
func TestAllocateDistinctConcurrent(t *testing.T) {
	cfg := testConfig(t, 64)
	a1, a2 := newAlloc(t, cfg), newAlloc(t, cfg)
	var mu sync.Mutex
	seen := map[uint32]bool{}
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := a1
			if i%2 == 1 {
				a = a2
			}
			l, err := a.Allocate(fmt.Sprintf("sb-%d", i))
			if err != nil {
				t.Error(err)
				return
			}
			if l.HostID < cfg.Base || uint64(l.HostID)+uint64(l.Size) > cfg.End() || (l.HostID-cfg.Base)%cfg.Size != 0 {
				t.Errorf("lease %d+%d outside the range", l.HostID, l.Size)
			}
			mu.Lock()
			defer mu.Unlock()
			if seen[l.HostID] {
				t.Errorf("range %d handed out twice", l.HostID)
			}
			seen[l.HostID] = true
		}()
	}
	wg.Wait()
	if len(seen) != 64 {
		t.Fatalf("got %d ranges, want 64", len(seen))
	}
}

func TestExhaustedAndRelease(t *testing.T) {
	a := newAlloc(t, testConfig(t, 2))
	l1, err := a.Allocate("a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Allocate("b"); err != nil {
		t.Fatal(err)
	}
	_, err = a.Allocate("c")
	if !errors.Is(err, ErrExhausted) || !errdefs.IsResourceExhausted(err) || !strings.Contains(err.Error(), "all 2 user namespace ranges") {
		t.Fatalf("third allocation: %v, want resource exhausted", err)
	}
	if err := l1.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l1.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	l3, err := a.Allocate("c")
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	if l3.HostID != l1.HostID {
		t.Fatalf("got range %d, want the released %d", l3.HostID, l1.HostID)
	}
}

func TestRecordNamesOwner(t *testing.T) {
	a := newAlloc(t, testConfig(t, 1))
	l, err := a.Allocate("isol8-abc")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(a.cfg.Dir, "slot-0"))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("pid=%d owner=isol8-abc\n", os.Getpid()); string(data) != want {
		t.Fatalf("slot file %q, want %q", data, want)
	}
	l.Release()
	if data, _ := os.ReadFile(filepath.Join(a.cfg.Dir, "slot-0")); len(data) != 0 {
		t.Fatalf("released slot still records %q", data)
	}
}

// TestHelperAllocate is not a test: it is the allocating process of
// TestReclaimAfterDeadOwner, killed while it holds a slot.
func TestHelperAllocate(t *testing.T) {
	dir := os.Getenv("USERNS_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process only")
	}
	a, err := New(Config{Base: 2_000_000, Size: MinSize, Count: 1, Dir: dir})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	if _, err := a.Allocate("dead-owner"); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("allocated")
	time.Sleep(time.Minute)
}

// TestReclaimAfterDeadOwner: a slot of a process killed while holding it is
// not handed out while a process still runs with its ids (a container of the
// dead owner), and is reclaimed once none does.
func TestReclaimAfterDeadOwner(t *testing.T) {
	cfg := testConfig(t, 1)
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperAllocate$", "-test.v")
	cmd.Env = append(os.Environ(), "USERNS_HELPER_DIR="+cfg.Dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	var got string
	for !strings.Contains(got, "allocated") {
		n, err := out.Read(buf)
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("helper: %v (output %q)", err, got)
		}
		got += string(buf[:n])
	}
	a := newAlloc(t, cfg)
	if _, err := a.Allocate("live"); !errors.Is(err, ErrExhausted) {
		t.Fatalf("while the owner lives: %v, want exhausted", err)
	}
	cmd.Process.Kill()
	cmd.Wait()

	var asked [2]uint64
	a.inUse = func(lo, hi uint64) (bool, error) { asked = [2]uint64{lo, hi}; return true, nil }
	if _, err := a.Allocate("next"); !errors.Is(err, ErrExhausted) {
		t.Fatalf("dead owner, its ids still in use: %v, want exhausted", err)
	}
	if asked != [2]uint64{uint64(cfg.Base), uint64(cfg.Base) + uint64(cfg.Size)} {
		t.Fatalf("checked ids %v, want the slot's range", asked)
	}
	a.inUse = procsInRange("/proc")
	l, err := a.Allocate("next")
	if err != nil {
		t.Fatalf("dead owner, ids free: %v", err)
	}
	if l.HostID != cfg.Base {
		t.Fatalf("reclaimed %d, want %d", l.HostID, cfg.Base)
	}
}

// TestProcsInRange finds this process by its own uid.
func TestProcsInRange(t *testing.T) {
	uid := uint64(os.Getuid())
	busy, err := procsInRange("/proc")(uid, uid+1)
	if err != nil || !busy {
		t.Fatalf("own uid %d: busy=%v err=%v", uid, busy, err)
	}
	busy, err = procsInRange("/proc")(4_000_000_000, 4_000_001_000)
	if err != nil || busy {
		t.Fatalf("unused range: busy=%v err=%v", busy, err)
	}
}

func TestCheckHost(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	files := HostFiles{
		Passwd: write("passwd", "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n"),
		Group:  write("group", "root:x:0:\nalice:x:1000:\n"),
		Subuid: write("subuid", "alice:100000:65536\n"),
		Subgid: filepath.Join(dir, "missing"),
	}
	cfg := Config{Base: 1_000_000, Size: DefaultSize, Count: 16, Dir: "/x"}
	if err := CheckHost(cfg, files); err != nil {
		t.Fatalf("clean host: %v", err)
	}
	files.Passwd = write("passwd2", "svc:x:1000500:1000500::/:/bin/sh\n")
	if err := CheckHost(cfg, files); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "svc") {
		t.Fatalf("account in range: %v", err)
	}
	files.Passwd = write("passwd3", "")
	files.Subuid = write("subuid2", "bob:1048576:65536\n")
	if err := CheckHost(cfg, files); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "bob") {
		t.Fatalf("subuid overlap: %v", err)
	}
}

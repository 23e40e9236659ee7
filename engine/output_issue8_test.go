package engine

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// heapPeak samples the engine process's heap until stop is called and
// returns how far it rose above where it started.
func heapPeak(t *testing.T) (stop func() int64) {
	t.Helper()
	var base runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)
	var (
		mu   sync.Mutex
		peak uint64
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				mu.Lock()
				peak = max(peak, m.HeapAlloc)
				mu.Unlock()
			}
		}
	}()
	return func() int64 {
		close(done)
		wg.Wait()
		return int64(peak) - int64(base.HeapAlloc)
	}
}

// 20 MB in 64 KiB writes, so the program never holds it all either.
const twentyMB = "import sys\nb = b'x' * 65536\nfor _ in range(320): sys.stdout.buffer.write(b)\nsys.stdout.flush()"

const twentyMBBytes = 320 * 65536

// Streaming passes everything through by default (it used to stop silently
// at 1 MiB) and never holds the whole output in the engine.
func TestStreamWholeOutput(t *testing.T) { matrix(t, testStreamWholeOutput) }

func testStreamWholeOutput(t *testing.T, b backend) {
	e := b.engine(t, Options{PoolSize: noPool})
	mustHaveImage(t, e, "python")
	stop := heapPeak(t)
	ch, err := e.ExecuteStream(t.Context(), Request{Runtime: "python", Code: twentyMB, TimeoutMs: 60000})
	if err != nil {
		t.Fatal(err)
	}
	var total int
	var last Event
	for ev := range ch {
		switch ev.Type {
		case EventStdout:
			total += len(ev.Data)
		case EventStderr, EventError:
			t.Errorf("unexpected %s event: %.200s", ev.Type, ev.Data)
		}
		last = ev
	}
	grew := stop()
	if total != twentyMBBytes {
		t.Fatalf("streamed %d bytes, want %d", total, twentyMBBytes)
	}
	if last.Type != EventExit || last.Data != "0" || last.Truncated {
		t.Fatalf("final event %+v", last)
	}
	if grew > 16<<20 {
		t.Fatalf("engine heap rose by %d bytes while streaming 20 MB", grew)
	}
	t.Logf("streamed %d bytes; engine heap peak +%d KiB", total, grew>>10)
}

// A streaming cap cuts the output and says so in the final event.
func TestStreamCapIsReported(t *testing.T) {
	e := newTestEngine(t, Options{PoolSize: noPool, StreamMaxOutput: 1000})
	mustHaveImage(t, e, "python")
	ch, err := e.ExecuteStream(t.Context(), Request{Runtime: "python", Code: "print('x'*2000000)"})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	var last Event
	for ev := range ch {
		if ev.Type == EventStdout {
			out.WriteString(ev.Data)
		}
		last = ev
	}
	if out.Len() != 1000 {
		t.Fatalf("streamed %d bytes, want 1000", out.Len())
	}
	if last.Type != EventExit || !last.Truncated {
		t.Fatalf("final event %+v does not say truncated", last)
	}
}

// Buffered mode keeps its cap (1 MiB by default) and stays bounded with
// 20 MB of output.
func TestBufferedBigOutputBounded(t *testing.T) {
	e := newTestEngine(t, Options{PoolSize: noPool})
	mustHaveImage(t, e, "python")
	stop := heapPeak(t)
	res := run(t, e, Request{Runtime: "python", Code: twentyMB, TimeoutMs: 60000})
	grew := stop()
	if !res.Truncated || len(res.Stdout) > DefaultMaxOutputSize+200 {
		t.Fatalf("truncated %v, stdout %d bytes", res.Truncated, len(res.Stdout))
	}
	if grew > 16<<20 {
		t.Fatalf("engine heap rose by %d bytes for a 20 MB buffered run", grew)
	}
	t.Logf("buffered: stdout %d bytes; engine heap peak +%d KiB", len(res.Stdout), grew>>10)
}

// Backend reports the containerd it reached; cleanup's dry run gives each
// image its id.
func TestBackendAndImageIDs(t *testing.T) { matrix(t, testBackendAndImageIDs) }

func testBackendAndImageIDs(t *testing.T, b backend) {
	e := b.engine(t, Options{PoolSize: noPool})
	mustHaveImage(t, e, "python")
	info, err := e.Backend(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	wantAddr := e.opts.Containerd.Address
	if backendOf(e) == backendDocker {
		wantAddr = testDockerDriver(t).Host()
	}
	if info.Address != wantAddr || info.Name != string(b) || info.Version == "" {
		t.Fatalf("backend %+v", info)
	}
	rep, err := e.Cleanup(t.Context(), CleanupOptions{Images: true, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if id := rep.ImageIDs["isol8:python"]; len(id) != 64 {
		t.Fatalf("image ids %v", rep.ImageIDs)
	}
}

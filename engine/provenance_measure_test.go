package engine

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/isol8/isol8/audit"
)

// TestMeasureAuditOverhead measures what the audit log costs a warm
// execution (p50/p95, interleaved runs on one warm pool) and throughput at
// concurrency 4. It only runs with ISOL8_MEASURE_AUDIT=1 and prints numbers;
// the only assertion is that every execution succeeded and was recorded.
func TestMeasureAuditOverhead(t *testing.T) {
	if os.Getenv("ISOL8_MEASURE_AUDIT") == "" {
		t.Skip("set ISOL8_MEASURE_AUDIT=1 to measure the audit log's overhead")
	}
	n := 300
	base := newTestEngine(t, Options{PoolSize: &PoolSize{Clean: 4, Dirty: 4}})
	mustHaveImage(t, base, "bash", "python")
	views := map[string]*Engine{"off": base}
	for _, mode := range []struct {
		name  string
		track bool
	}{{"on", false}, {"on+resources", true}} {
		l, _ := newAuditLog(t, audit.Config{TrackResources: mode.track})
		v, err := base.host.NewEngine(Options{PoolSize: &PoolSize{Clean: 4, Dirty: 4}, Audit: l})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = v.Stop(context.Background()) })
		views[mode.name] = v
	}
	order := []string{"off", "on", "on+resources"}
	for _, rt := range []struct{ name, code string }{{"bash", "echo 1"}, {"python", "print(1)"}} {
		samples := map[string][]time.Duration{}
		for i := range n + 10 {
			for _, name := range order {
				start := time.Now()
				res, err := views[name].Execute(t.Context(), Request{Runtime: rt.name, Code: rt.code})
				took := time.Since(start)
				if err != nil || res.Stdout != "1" {
					t.Fatalf("%s %s: %+v %v", rt.name, name, res, err)
				}
				if i >= 10 {
					samples[name] = append(samples[name], took)
				}
			}
		}
		for _, name := range order {
			s := samples[name]
			sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
			p50, p95 := s[len(s)/2], s[len(s)*95/100]
			fmt.Printf("warm %-6s audit %-13s n=%d p50 %.3f ms  p95 %.3f ms\n", rt.name, name, len(s),
				float64(p50.Microseconds())/1000, float64(p95.Microseconds())/1000)
		}
	}
	// The cgroup sampling of trackResources alone, on a live pooled sandbox.
	res := run(t, base, Request{Runtime: "bash", Code: "echo 1"})
	const samples = 2000
	start := time.Now()
	for range samples {
		if startCgroupSample(res.ContainerID).finish() == nil {
			t.Fatal("cgroup sample failed")
		}
	}
	fmt.Printf("cgroup sample (reset + read peak memory): %.1f us\n", float64(time.Since(start).Microseconds())/samples)
	const total = 400
	for round := range 2 {
		for _, name := range order {
			e := views[name]
			work := make(chan struct{}, total)
			for range total {
				work <- struct{}{}
			}
			close(work)
			var wg sync.WaitGroup
			start := time.Now()
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range work {
						if _, err := e.Execute(t.Context(), Request{Runtime: "bash", Code: "echo 1"}); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			fmt.Printf("throughput c=4 bash round %d audit %-13s %d executions in %s: %.1f/s\n", round+1, name, total, el.Round(time.Millisecond), float64(total)/el.Seconds())
		}
	}
	for _, name := range order[1:] {
		l := views[name].opts.Audit
		if err := l.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if l.Dropped() != 0 || l.Written() != uint64(2*(n+10)+2*total) {
			t.Errorf("audit %s: written %d dropped %d", name, l.Written(), l.Dropped())
		}
	}
}

// BenchmarkAuditExec is the engine's per-execution audit work alone (record
// building, hashing, queueing; the writer runs on its own goroutine).
func BenchmarkAuditExec(b *testing.B) {
	l, err := audit.New(audit.Config{Dir: b.TempDir(), BufferSize: 1 << 16})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close(context.Background())
	e, err := New(Options{Audit: l, Secrets: map[string]string{"K": "secret-value"}})
	if err != nil {
		b.Fatal(err)
	}
	req := Request{Runtime: "python", Code: "print('hello world')\n"}
	p, err := e.plan(req)
	if err != nil {
		b.Fatal(err)
	}
	res := &Result{Stdout: "hello world", ExitCode: 0, DurationMs: 16, ExecutionID: "x", ContainerID: "c", ResourceUsage: &ResourceUsage{}}
	start := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		e.auditExec(context.Background(), start, req, nil, p, res, nil)
	}
}

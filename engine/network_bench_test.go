package engine

import (
	"slices"
	"testing"
	"time"

	"github.com/isol8/isol8/internal/testenv"
)

// BenchmarkNetworkSandbox: one execution of `true` (bash) with network none
// and filtered, cold (no pool: create, start, run, remove) and from a warm
// pool (acquire, run, release), with p50/p95. The difference is what the
// filtered network costs: the proxy's listener in the namespace when a
// sandbox is made, the policy's attach and detach per execution.
//
//	ISOL8_INIT_PATH=$PWD/bin/isol8-init go test ./engine -run XXX -bench NetworkSandbox -benchtime 20x
func BenchmarkNetworkSandbox(b *testing.B) {
	addr := testenv.MustHaveContainerd(b)
	for _, pooled := range []bool{false, true} {
		for _, network := range []string{NetworkNone, NetworkFiltered} {
			name := network + "/cold"
			size := &PoolSize{}
			if pooled {
				name, size = network+"/pool", &PoolSize{Clean: 1, Dirty: 1}
			}
			b.Run(name, func(b *testing.B) {
				e, err := New(Options{Network: network, PoolSize: size, InitPath: testenv.InitBinary(b),
					Containerd: ContainerdOptions{Address: addr}, NewDriver: containerdDriver(addr)})
				if err != nil {
					b.Fatal(err)
				}
				defer e.Stop(b.Context())
				req := Request{Runtime: "bash", Code: "true"}
				if pooled {
					if err := e.Prewarm(b.Context(), "bash"); err != nil {
						b.Fatal(err)
					}
					if _, err := e.Execute(b.Context(), req); err != nil { // warm-up
						b.Fatal(err)
					}
				}
				var ds []time.Duration
				for b.Loop() {
					t0 := time.Now()
					res, err := e.Execute(b.Context(), req)
					if err != nil || res.ExitCode != 0 {
						b.Fatalf("%v %+v", err, res)
					}
					ds = append(ds, time.Since(t0))
					if pooled {
						// Let the reset finish: measure a warm hit.
						time.Sleep(50 * time.Millisecond)
					}
				}
				slices.Sort(ds)
				b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(ds[int(float64(len(ds)-1)*0.95)].Microseconds())/1000, "p95-ms")
			})
		}
	}
}

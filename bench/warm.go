package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/isol8/isol8"
	"github.com/isol8/isol8/engine"
)

// Warm-pool measurements run the library in this process: Execute latency
// of a sandbox taken from the pool, and throughput under concurrency.

const (
	warmN       = 200 // measured warm executions per runtime
	warmWarmups = 5
)

// warmResult is one runtime's warm Execute latency next to its interpreter
// floor (the chroot cell of the cold measurement).
type warmResult struct {
	Runtime string `json:"runtime"`
	Warm    series `json:"warm"`
	Floor   series `json:"floor"`
}

// throughputResult is executions per second at one concurrency.
type throughputResult struct {
	Strategy    string  `json:"strategy"`
	Concurrency int     `json:"concurrency"`
	Executions  int     `json:"executions"`
	PerSecond   float64 `json:"perSecond"`
}

func newEngine(addr, initPath string, o isol8.Options) (isol8.Engine, error) {
	o.InitPath = initPath
	o.Containerd.Address = addr
	return isol8.New(o)
}

// measureWarm times Execute of the hello program on a warm fast pool.
func measureWarm(ctx context.Context, addr, initPath string, bc benchCase, n int) (series, error) {
	return measureWarmOn(ctx, nil, addr, initPath, bc, n, " warm")
}

// measureWarmOn is measureWarm on the driver drv makes (nil: containerd at
// addr); label follows the runtime's name in the progress line.
func measureWarmOn(ctx context.Context, drv engine.DriverFactory, addr, initPath string, bc benchCase, n int, label string) (series, error) {
	eng, err := newEngine(addr, initPath, isol8.Options{PoolStrategy: isol8.PoolFast, PoolSize: &isol8.PoolSize{Clean: 1, Dirty: 1}, NewDriver: drv})
	if err != nil {
		return series{}, err
	}
	defer eng.Stop(context.WithoutCancel(ctx))
	if err := eng.Start(ctx, isol8.StartOptions{Prewarm: []string{bc.name}}); err != nil {
		return series{}, err
	}
	samples := make([]time.Duration, 0, n)
	for i := range warmWarmups + n {
		start := time.Now()
		res, err := eng.Execute(ctx, isol8.Request{Runtime: bc.name, Code: bc.code})
		took := time.Since(start)
		if err != nil {
			return series{}, fmt.Errorf("warm run %d: %w", i+1, err)
		}
		if res.Stdout+"\n" != want || res.ExitCode != 0 {
			return series{}, fmt.Errorf("warm run %d: wrong answer: %q (exit %d, stderr %q)", i+1, res.Stdout, res.ExitCode, res.Stderr)
		}
		if i >= warmWarmups {
			samples = append(samples, took)
		}
	}
	s := newSeries(samples)
	fmt.Fprintf(os.Stderr, "%-14s p50 %6s ms  p95 %6s ms\n", bc.name+label, ms(s.P50), ms(s.P95))
	return s, nil
}

// measureThroughput runs total python executions with c workers on an
// engine whose pool holds c sandboxes, and returns executions per second.
func measureThroughput(ctx context.Context, addr, initPath, strategy string, c, total int) (throughputResult, error) {
	eng, err := newEngine(addr, initPath, isol8.Options{
		PoolStrategy:  strategy,
		PoolSize:      &isol8.PoolSize{Clean: c, Dirty: c},
		MaxConcurrent: c,
	})
	if err != nil {
		return throughputResult{}, err
	}
	defer eng.Stop(context.WithoutCancel(ctx))
	if err := eng.Start(ctx, isol8.StartOptions{Prewarm: []string{"python"}}); err != nil {
		return throughputResult{}, err
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	start := time.Now()
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(total) {
				res, err := eng.Execute(ctx, isol8.Request{Runtime: "python", Code: `print("hello")`})
				if err == nil && res.Stdout != "hello" {
					err = fmt.Errorf("wrong answer %q", res.Stdout)
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if firstErr != nil {
		return throughputResult{}, fmt.Errorf("%s c=%d: %w", strategy, c, firstErr)
	}
	r := throughputResult{Strategy: strategy, Concurrency: c, Executions: total, PerSecond: float64(total) / took.Seconds()}
	fmt.Fprintf(os.Stderr, "%-14s c=%d %6.1f exec/s\n", strategy, c, r.PerSecond)
	return r, nil
}

func reportWarm(w io.Writer, warm []warmResult, tput []throughputResult) {
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Warm pool (fast strategy, in-process Execute, %d runs after %d warm-ups) vs the interpreter alone in a chroot of the same rootfs\n\n", warmN, warmWarmups)
	fmt.Fprintln(w, "| runtime | warm p50 | p95 | chroot p50 | p95 | warm − chroot p50 |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	for _, r := range warm {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %+.1f ms |\n", r.Runtime, ms(r.Warm.P50), ms(r.Warm.P95),
			ms(r.Floor.P50), ms(r.Floor.P95), float64(r.Warm.P50-r.Floor.P50)/float64(time.Millisecond))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Throughput, python hello, executions/s (pool size = concurrency = maxConcurrent)")
	fmt.Fprintln(w)
	var conc []string
	for _, c := range concurrencies {
		conc = append(conc, fmt.Sprintf("c=%d", c))
	}
	fmt.Fprintf(w, "| strategy | %s |\n", strings.Join(conc, " | "))
	fmt.Fprintf(w, "|---|%s\n", strings.Repeat("---:|", len(concurrencies)))
	for _, strategy := range []string{isol8.PoolFast, isol8.PoolSecure} {
		fmt.Fprintf(w, "| %s |", strategy)
		for _, r := range tput {
			if r.Strategy == strategy {
				fmt.Fprintf(w, " %.1f |", r.PerSecond)
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	for _, r := range warm {
		switch r.Runtime {
		case "python":
			fmt.Fprintf(w, "warm python p50 %s ms vs chroot %s ms (target ≤ chroot + 5 ms)\n", ms(r.Warm.P50), ms(r.Floor.P50))
		case "bash":
			fmt.Fprintf(w, "warm bash p50 %s ms (target ≤ 5 ms)\n", ms(r.Warm.P50))
		}
	}
	for _, r := range tput {
		if r.Strategy == isol8.PoolFast && r.Concurrency == 4 {
			fmt.Fprintf(w, "fast python throughput at c=4: %.1f/s (target ≥ 40/s)\n", r.PerSecond)
		}
	}
}

var concurrencies = []int{1, 2, 4, 8}

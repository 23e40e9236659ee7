package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"time"

	"github.com/isol8/isol8"
	"github.com/isol8/isol8/engine"
	"github.com/isol8/isol8/internal/dockertest"
	"github.com/isol8/isol8/internal/testenv"
)

// The Docker rows: the same hello programs through `isol8 --driver docker
// run` (cold) and an in-process engine on the Docker driver (warm), on a
// Docker daemon of the benchmark's own (started like the tests' one, with
// the runtime images copied from containerd) or one given with -docker.

// dockerResult is one runtime's cold and warm latency on both drivers.
type dockerResult struct {
	Runtime        string  `json:"runtime"`
	ContainerdCold series  `json:"containerdCold"`
	DockerCold     series  `json:"dockerCold"`
	ContainerdWarm series  `json:"containerdWarm"`
	DockerWarm     series  `json:"dockerWarm"`
	ColdRatio      float64 `json:"coldRatio"` // containerd cold p50 / docker cold p50
}

// dockerHost returns the daemon to measure: flag "auto" starts a private
// dockerd and loads the images (stop stops it), anything else is a host
// address whose daemon gets the images loaded if missing.
func dockerHost(ctx context.Context, flag, ctrdAddr string, names []string) (host string, stop func(), err error) {
	stop = func() {}
	if flag == "auto" {
		d, err := testenv.StartDockerd()
		if err != nil {
			return "", stop, err
		}
		host, stop = d.Host, func() { _ = d.Stop() }
	} else {
		host = flag
	}
	var images []string
	for _, n := range names {
		images = append(images, "isol8:"+n)
	}
	start := time.Now()
	if err := dockertest.Import(ctx, ctrdAddr, host, images...); err != nil {
		stop()
		return "", func() {}, err
	}
	fmt.Fprintf(os.Stderr, "docker: %s, %d images loaded in %s\n", host, len(images), time.Since(start).Round(time.Millisecond))
	return host, stop, nil
}

// measureDocker measures one runtime on both drivers, alternating them run
// by run (cold: one `isol8 run` process each; warm: one Execute each on two
// prewarmed engines), so both see the same machine load.
func measureDocker(ctx context.Context, isol8Bin, ctrdAddr, host, initPath string, bc benchCase, n int, warm bool) (row dockerResult, err error) {
	row.Runtime = bc.name
	containerdCmd := func() *exec.Cmd {
		return command(ctx, os.Interrupt, isol8Bin, "--containerd-address", ctrdAddr, "run", "-r", bc.name, "-e", bc.code)
	}
	dockerCmd := func() *exec.Cmd {
		cmd := command(ctx, os.Interrupt, isol8Bin, "--driver", "docker", "run", "-r", bc.name, "-e", bc.code)
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+host)
		return cmd
	}
	var cs, ds []time.Duration
	for i := range warmups + n {
		c, err := timeCmd(containerdCmd())
		if err != nil {
			return row, fmt.Errorf("containerd cold run %d: %w", i+1, err)
		}
		d, err := timeCmd(dockerCmd())
		if err != nil {
			return row, fmt.Errorf("docker cold run %d: %w", i+1, err)
		}
		if i >= warmups {
			cs, ds = append(cs, c), append(ds, d)
		}
	}
	row.ContainerdCold, row.DockerCold = newSeries(cs), newSeries(ds)
	row.ColdRatio = float64(row.ContainerdCold.P50) / float64(row.DockerCold.P50)
	fmt.Fprintf(os.Stderr, "%-14s containerd p50 %6s ms, docker p50 %6s ms (alternating)\n", bc.name+" cold", ms(row.ContainerdCold.P50), ms(row.DockerCold.P50))
	if !warm {
		return row, nil
	}
	row.ContainerdWarm, row.DockerWarm, err = measureWarmBoth(ctx, ctrdAddr, host, initPath, bc, max(n, warmN))
	return row, err
}

// timeCmd runs cmd and times it; it must print exactly want.
func timeCmd(cmd *exec.Cmd) (time.Duration, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%w; stderr: %q", err, stderr.String())
	}
	if stdout.String() != want {
		return 0, fmt.Errorf("wrong answer: stdout %q, want %q; stderr: %q", stdout.String(), want, stderr.String())
	}
	return took, nil
}

// measureWarmBoth times Execute on a warm fast pool on each driver,
// alternating between the two engines.
func measureWarmBoth(ctx context.Context, ctrdAddr, host, initPath string, bc benchCase, n int) (cw, dw series, err error) {
	engines := make([]isol8.Engine, 2)
	for i, drv := range []engine.DriverFactory{nil, isol8.DockerDriver(host)} {
		eng, err := newEngine(ctrdAddr, initPath, isol8.Options{PoolStrategy: isol8.PoolFast, PoolSize: &isol8.PoolSize{Clean: 1, Dirty: 1}, NewDriver: drv})
		if err != nil {
			return cw, dw, err
		}
		defer eng.Stop(context.WithoutCancel(ctx))
		if err := eng.Start(ctx, isol8.StartOptions{Prewarm: []string{bc.name}}); err != nil {
			return cw, dw, err
		}
		engines[i] = eng
	}
	samples := [2][]time.Duration{}
	for i := range warmWarmups + n {
		for j, eng := range engines {
			start := time.Now()
			res, err := eng.Execute(ctx, isol8.Request{Runtime: bc.name, Code: bc.code})
			took := time.Since(start)
			if err != nil {
				return cw, dw, fmt.Errorf("warm run %d: %w", i+1, err)
			}
			if res.Stdout+"\n" != want || res.ExitCode != 0 {
				return cw, dw, fmt.Errorf("warm run %d: wrong answer: %q (exit %d, stderr %q)", i+1, res.Stdout, res.ExitCode, res.Stderr)
			}
			if i >= warmWarmups {
				samples[j] = append(samples[j], took)
			}
		}
	}
	cw, dw = newSeries(samples[0]), newSeries(samples[1])
	fmt.Fprintf(os.Stderr, "%-14s containerd p50 %6s ms, docker p50 %6s ms (alternating)\n", bc.name+" warm", ms(cw.P50), ms(dw.P50))
	return cw, dw, nil
}

func reportDocker(w io.Writer, rows []dockerResult) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Drivers side by side, measured alternately run by run: cold is one whole `isol8 run` process, warm an in-process Execute on a warm fast pool (ms)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| runtime | containerd cold p50 | p95 | docker cold p50 | p95 | cold ratio containerd/docker | containerd warm p50 | p95 | docker warm p50 | p95 |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %.2f× | %s | %s | %s | %s |\n", r.Runtime,
			ms(r.ContainerdCold.P50), ms(r.ContainerdCold.P95), ms(r.DockerCold.P50), ms(r.DockerCold.P95), r.ColdRatio,
			ms(r.ContainerdWarm.P50), ms(r.ContainerdWarm.P95), ms(r.DockerWarm.P50), ms(r.DockerWarm.P95))
	}
	fmt.Fprintln(w)
	if i := slices.IndexFunc(rows, func(r dockerResult) bool { return r.Runtime == "python" }); i >= 0 {
		fmt.Fprintf(w, "cold python p50 containerd/docker %.2f× (target ≤ 0.5×)\n", rows[i].ColdRatio)
	}
}

// measureDrivers measures every measured runtime on both drivers.
func measureDrivers(ctx context.Context, flag, ctrdAddr, isol8Bin, initPath string, cold []result, n int, withWarm bool) ([]dockerResult, error) {
	var names []string
	for _, r := range cold {
		names = append(names, r.Runtime)
	}
	host, stop, err := dockerHost(ctx, flag, ctrdAddr, names)
	if err != nil {
		return nil, err
	}
	defer stop()
	var rows []dockerResult
	for _, r := range cold {
		bc := cases[slices.IndexFunc(cases, func(c benchCase) bool { return c.name == r.Runtime })]
		row, err := measureDocker(ctx, isol8Bin, ctrdAddr, host, initPath, bc, n, withWarm)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", bc.name, err)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

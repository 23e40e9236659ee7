package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"time"

	"github.com/isol8/isol8"
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

// measureDocker measures the Docker cells of one runtime.
func measureDocker(ctx context.Context, isol8Bin, host, initPath string, bc benchCase, n int, warm bool) (cold, warmS series, err error) {
	cold, err = sample(ctx, bc.name+" docker", n, func(int) (*exec.Cmd, error) {
		cmd := command(ctx, os.Interrupt, isol8Bin, "--driver", "docker", "run", "-r", bc.name, "-e", bc.code)
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+host)
		return cmd, nil
	})
	if err != nil || !warm {
		return cold, warmS, err
	}
	warmS, err = measureWarmOn(ctx, isol8.DockerDriver(host), "", initPath, bc, max(n, warmN), " docker warm")
	return cold, warmS, err
}

func reportDocker(w io.Writer, rows []dockerResult) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Drivers side by side: cold is one whole `isol8 run` process, warm an in-process Execute on a warm fast pool (ms)")
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

// measureDrivers measures the Docker cells of every measured runtime and
// pairs them with the containerd cells of the same run.
func measureDrivers(ctx context.Context, flag, ctrdAddr, isol8Bin, initPath string, cold []result, warm []warmResult, n int, withWarm bool) ([]dockerResult, error) {
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
		dc, dw, err := measureDocker(ctx, isol8Bin, host, initPath, bc, n, withWarm)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", bc.name, err)
		}
		row := dockerResult{Runtime: r.Runtime, ContainerdCold: r.ISOL8, DockerCold: dc, DockerWarm: dw,
			ColdRatio: float64(r.ISOL8.P50) / float64(dc.P50)}
		if i := slices.IndexFunc(warm, func(w warmResult) bool { return w.Runtime == r.Runtime }); i >= 0 {
			row.ContainerdWarm = warm[i].Warm
		}
		rows = append(rows, row)
	}
	return rows, nil
}

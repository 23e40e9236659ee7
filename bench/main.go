// Command bench measures isol8's cold start: the wall time of one whole
// `isol8 run` process per hello-world program, next to bare runc running
// the same command on the same rootfs under the same spec, and next to the
// interpreter alone in a chroot (the floor). It prints a markdown table and
// writes the samples as JSON. It needs root, containerd with the isol8
// images, and runc. See docs/benchmarks.md.
//
//	go run ./bench -isol8 bin/isol8 [-n 20] [-runtimes python,node] [-json out.json]
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/isol8/isol8/oci"
	"github.com/isol8/isol8/runtimes"
	"github.com/isol8/isol8/seccomp"
)

const (
	namespace = "isol8"
	want      = "hello\n"
	warmups   = 2
	minN      = 20 // fewer measured runs are not good enough for a report
	pythonMax = 2.0
)

// benchCase is one runtime's hello-world program, as isol8 code and as the
// interpreter command isol8 runs for it.
type benchCase struct {
	name string
	code string
	argv []string
}

var cases = []benchCase{
	{"python", `print("hello")`, []string{"python3", "-c", `print("hello")`}},
	{"node", `console.log("hello")`, []string{"node", "-e", `console.log("hello")`}},
	{"bun", `console.log("hello")`, []string{"bun", "-e", `console.log("hello")`}},
	{"deno", `console.log("hello")`, []string{"deno", "eval", `console.log("hello")`}},
	{"bash", `echo hello`, []string{"bash", "-c", `echo hello`}},
}

type result struct {
	Runtime string  `json:"runtime"`
	ISOL8   series  `json:"isol8"`
	Runc    series  `json:"runc"`
	Chroot  series  `json:"chroot"`
	Ratio   float64 `json:"ratio_p50"` // isol8 p50 / runc p50
}

type machine struct {
	CPUs       int    `json:"cpus"`
	CPU        string `json:"cpu"`
	Memory     string `json:"memory"`
	Kernel     string `json:"kernel"`
	Cgroup     string `json:"cgroup"`
	Containerd string `json:"containerd"`
	Runc       string `json:"runc"`
	Load       string `json:"load"` // /proc/loadavg when the benchmark started
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	isol8 := flag.String("isol8", "", "path of the isol8 binary to measure (required)")
	n := flag.Int("n", minN, fmt.Sprintf("measured runs per cell, after %d warm-up runs (at least %d for a report)", warmups, minN))
	names := flag.String("runtimes", "python,node,bun,deno,bash", "comma-separated runtimes to measure")
	jsonPath := flag.String("json", "", "write the results as JSON here (default bench/results/<timestamp>.json)")
	addr := flag.String("containerd-address", defaultAddress(), "containerd socket")
	initPath := flag.String("init", "", "isol8-init for the in-process warm-pool rows (default: isol8-init beside -isol8)")
	noWarm := flag.Bool("no-warm", false, "skip the warm-pool rows")
	dockerFlag := flag.String("docker", "auto", `Docker rows: "auto" starts a private dockerd with the images copied from containerd, "off" skips them, else the daemon's address (unix:///...)`)
	flag.Parse()

	if *isol8 == "" {
		return errors.New("-isol8 is required")
	}
	if *n < 1 {
		return fmt.Errorf("-n must be at least 1, got %d", *n)
	}
	selected, err := selectCases(*names)
	if err != nil {
		return err
	}
	bin, err := filepath.Abs(*isol8)
	if err != nil {
		return fmt.Errorf("isol8 binary: %w", err)
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("isol8 binary: %w", err)
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root (runc, mounts, chroot)")
	}

	c, err := client.New(*addr, client.WithDefaultNamespace(namespace), client.WithTimeout(10*time.Second))
	if err != nil {
		return fmt.Errorf("connect to containerd at %s: %w", *addr, err)
	}
	defer c.Close()
	ctx = namespaces.WithNamespace(ctx, namespace)
	m, err := describeMachine(ctx, c)
	if err != nil {
		return err
	}

	started := time.Now()
	var results []result
	for _, bc := range selected {
		r, err := measure(ctx, c, bin, *addr, bc, *n)
		if err != nil {
			return fmt.Errorf("%s: %w", bc.name, err)
		}
		results = append(results, r)
	}

	var warm []warmResult
	var tput []throughputResult
	if !*noWarm {
		if *initPath == "" {
			*initPath = filepath.Join(filepath.Dir(bin), "isol8-init")
		}
		for _, r := range results {
			bc := cases[slices.IndexFunc(cases, func(c benchCase) bool { return c.name == r.Runtime })]
			s, err := measureWarm(ctx, *addr, *initPath, bc, max(*n, warmN))
			if err != nil {
				return fmt.Errorf("%s warm: %w", bc.name, err)
			}
			warm = append(warm, warmResult{Runtime: r.Runtime, Warm: s, Floor: r.Chroot})
		}
		for _, strategy := range []string{"fast", "secure"} {
			for _, c := range concurrencies {
				r, err := measureThroughput(ctx, *addr, *initPath, strategy, c, max(60, 30*c))
				if err != nil {
					return err
				}
				tput = append(tput, r)
			}
		}
	}

	var drivers []dockerResult
	if *dockerFlag != "off" {
		if *initPath == "" {
			*initPath = filepath.Join(filepath.Dir(bin), "isol8-init")
		}
		drivers, err = measureDrivers(ctx, *dockerFlag, *addr, bin, *initPath, results, *n, !*noWarm)
		if err != nil {
			return fmt.Errorf("docker: %w", err)
		}
	}

	report(os.Stdout, m, *n, results)
	if !*noWarm {
		reportWarm(os.Stdout, warm, tput)
	}
	if len(drivers) > 0 {
		reportDocker(os.Stdout, drivers)
	}
	if *jsonPath == "" {
		*jsonPath = filepath.Join("bench", "results", started.Format("20060102-150405")+".json")
	}
	if err := writeJSON(*jsonPath, started, m, *n, results, warm, tput, drivers); err != nil {
		return err
	}
	fmt.Printf("\nresults: %s\n", *jsonPath)
	return nil
}

// defaultAddress finds containerd as isol8 does: CONTAINERD_ADDRESS, the
// system socket if something listens there, else isol8's private one.
func defaultAddress() string {
	if a := os.Getenv("CONTAINERD_ADDRESS"); a != "" {
		return a
	}
	const system = "/run/containerd/containerd.sock"
	if c, err := net.DialTimeout("unix", system, time.Second); err == nil {
		c.Close()
		return system
	}
	return "/run/isol8/containerd/containerd.sock"
}

func selectCases(list string) ([]benchCase, error) {
	var out []benchCase
	for name := range strings.SplitSeq(list, ",") {
		name = strings.TrimSpace(name)
		i := slices.IndexFunc(cases, func(bc benchCase) bool { return bc.name == name })
		if i < 0 {
			return nil, fmt.Errorf("-runtimes: unknown runtime %q (known: python, node, bun, deno, bash)", name)
		}
		out = append(out, cases[i])
	}
	return out, nil
}

// measure runs the three cells of one runtime: the isol8 CLI, bare runc on
// a read-only view of the runtime's image, and a chroot into that view.
func measure(ctx context.Context, c *client.Client, isol8, addr string, bc benchCase, n int) (res result, err error) {
	res.Runtime = bc.name
	res.ISOL8, err = sample(ctx, bc.name+" isol8", n, func(int) (*exec.Cmd, error) {
		return command(ctx, os.Interrupt, isol8, "--containerd-address", addr, "run", "-r", bc.name, "-e", bc.code), nil
	})
	if err != nil {
		return res, fmt.Errorf("isol8 run: %w", err)
	}

	var cl cleanups
	defer func() { err = errors.Join(err, cl.run()) }()
	bundle, err := os.MkdirTemp("", "isol8-bench-")
	if err != nil {
		return res, fmt.Errorf("bundle: %w", err)
	}
	rootfs := filepath.Join(bundle, "rootfs")
	config := filepath.Join(bundle, "config.json")
	// Removes only what it created, never recursively: if an unmount
	// failed, the mounted image stays untouched.
	cl.add(func() error {
		if err := os.Remove(config); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return errors.Join(os.Remove(rootfs), os.Remove(bundle))
	})
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		return res, fmt.Errorf("bundle: %w", err)
	}
	prefix := fmt.Sprintf("isol8-bench-%d-%s-", os.Getpid(), bc.name)
	if err := mountImage(ctx, c, "isol8:"+bc.name, prefix+"rootfs", rootfs, &cl); err != nil {
		return res, err
	}

	spec, err := runcSpec(bc.argv)
	if err != nil {
		return res, err
	}
	cl.add(func() error { return removeRuncLeftovers(prefix) })
	res.Runc, err = sample(ctx, bc.name+" runc", n, func(i int) (*exec.Cmd, error) {
		id := fmt.Sprintf("%s%d", prefix, i)
		spec.Linux.CgroupsPath = "/isol8-bench/" + id
		b, err := json.MarshalIndent(spec, "", "  ")
		if err == nil {
			err = os.WriteFile(config, b, 0o644)
		}
		if err != nil {
			return nil, fmt.Errorf("write %s: %w", config, err)
		}
		return command(ctx, syscall.SIGTERM, "runc", "run", "--bundle", bundle, id), nil
	})
	if err != nil {
		return res, fmt.Errorf("runc run: %w", err)
	}
	res.Ratio = float64(res.ISOL8.P50) / float64(res.Runc.P50)

	if err := mountChrootFS(rootfs, &cl); err != nil {
		return res, err
	}
	path, err := lookPathIn(rootfs, bc.argv[0])
	if err != nil {
		return res, err
	}
	res.Chroot, err = sample(ctx, bc.name+" chroot", n, func(int) (*exec.Cmd, error) {
		cmd := command(ctx, syscall.SIGTERM, path, bc.argv[1:]...)
		cmd.Args[0] = bc.argv[0]
		cmd.Env = runtimes.BaseEnv()
		cmd.Dir = oci.SandboxDir
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Chroot:     rootfs,
			Credential: &syscall.Credential{Uid: oci.SandboxUID, Gid: oci.SandboxGID},
		}
		return cmd, nil
	})
	if err != nil {
		return res, fmt.Errorf("chroot: %w", err)
	}
	return res, nil
}

// command is exec.CommandContext that stops the process with sig (so runc
// and isol8 clean up after themselves) instead of SIGKILL.
func command(ctx context.Context, sig os.Signal, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(sig) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// sample runs warm-up runs, then n measured runs, of the command newCmd(i)
// makes (outside the timing) and times each whole process. Every run must
// succeed and print exactly want.
func sample(ctx context.Context, label string, n int, newCmd func(i int) (*exec.Cmd, error)) (series, error) {
	samples := make([]time.Duration, 0, n)
	for i := range warmups + n {
		cmd, err := newCmd(i)
		if err != nil {
			return series{}, err
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		err = cmd.Run()
		took := time.Since(start)
		if ctx.Err() != nil {
			return series{}, ctx.Err()
		}
		if err != nil {
			return series{}, fmt.Errorf("run %d: %w; stderr: %q", i+1, err, stderr.String())
		}
		if got := stdout.String(); got != want {
			return series{}, fmt.Errorf("run %d: wrong answer: stdout %q, want %q; stderr: %q", i+1, got, want, stderr.String())
		}
		if i >= warmups {
			samples = append(samples, took)
		}
	}
	s := newSeries(samples)
	fmt.Fprintf(os.Stderr, "%-14s p50 %6s ms  p95 %6s ms\n", label, ms(s.P50), ms(s.P95))
	return s, nil
}

// runcSpec is the spec isol8 gives a sandbox (same baseline, seccomp
// profile and hostname as the engine), with argv as the container's process
// and that process set up as the agent sets up user code: uid 100:101 in
// /sandbox with the run environment and no capabilities.
func runcSpec(argv []string) (*specs.Spec, error) {
	profile, err := seccomp.Default()
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	spec, err := oci.New(oci.WithSeccomp(profile), oci.WithHostname("isol8"), oci.WithEnv(runtimes.BaseEnv()))
	if err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	spec.Process.Args = argv
	spec.Process.User = specs.User{UID: oci.SandboxUID, GID: oci.SandboxGID}
	spec.Process.Cwd = oci.SandboxDir
	// Setting the uid leaves the agent's bounding set and clears the rest.
	spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: spec.Process.Capabilities.Bounding}
	return spec, nil
}

// removeRuncLeftovers force-deletes runc containers whose id starts with
// prefix (left by an interrupted run; runc's state is in /run/runc) and the
// benchmark's parent cgroups.
func removeRuncLeftovers(prefix string) error {
	ids, _ := filepath.Glob(filepath.Join("/run/runc", prefix+"*"))
	var errs []error
	for _, id := range ids {
		if out, err := exec.Command("runc", "delete", "-f", filepath.Base(id)).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("runc delete %s: %w: %s", filepath.Base(id), err, out))
		}
	}
	// Best effort: empty parents only (cgroup v1 has one per hierarchy).
	parents, _ := filepath.Glob("/sys/fs/cgroup/*/isol8-bench")
	for _, p := range append(parents, "/sys/fs/cgroup/isol8-bench") {
		_ = os.Remove(p)
	}
	return errors.Join(errs...)
}

// lookPathIn finds name in the run PATH inside rootfs and returns its path
// as seen from inside (the chroot).
func lookPathIn(rootfs, name string) (string, error) {
	for _, kv := range runtimes.BaseEnv() {
		if dirs, ok := strings.CutPrefix(kv, "PATH="); ok {
			for dir := range strings.SplitSeq(dirs, ":") {
				if _, err := os.Lstat(filepath.Join(rootfs, dir, name)); err == nil {
					return filepath.Join(dir, name), nil
				}
			}
		}
	}
	return "", fmt.Errorf("%s not found on the run PATH in the image", name)
}

func describeMachine(ctx context.Context, c *client.Client) (machine, error) {
	m := machine{CPUs: runtime.NumCPU(), Cgroup: "v1"}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		m.Cgroup = "v2"
	}
	m.CPU = procField("/proc/cpuinfo", "model name")
	if b, err := os.ReadFile("/proc/loadavg"); err == nil && len(strings.Fields(string(b))) >= 3 {
		m.Load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	if kb := procField("/proc/meminfo", "MemTotal"); kb != "" {
		var n int64
		fmt.Sscanf(kb, "%d", &n)
		m.Memory = fmt.Sprintf("%.1f GiB", float64(n)/(1<<20))
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return m, fmt.Errorf("uname: %w", err)
	}
	m.Kernel = unix.ByteSliceToString(u.Release[:])
	v, err := c.Version(ctx)
	if err != nil {
		return m, fmt.Errorf("containerd version: %w", err)
	}
	m.Containerd = v.Version
	out, err := exec.Command("runc", "--version").Output()
	if err != nil {
		return m, fmt.Errorf("runc --version: %w", err)
	}
	m.Runc = strings.TrimPrefix(strings.SplitN(string(out), "\n", 2)[0], "runc version ")
	return m, nil
}

// procField returns the value of the first "key: value" line of a /proc
// file, or "".
func procField(file, key string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func report(w io.Writer, m machine, n int, results []result) {
	fmt.Fprintf(w, "machine: %d CPUs (%s), %s RAM, kernel %s, cgroup %s, containerd %s, runc %s; load average at start %s\n",
		m.CPUs, m.CPU, m.Memory, m.Kernel, m.Cgroup, m.Containerd, m.Runc, m.Load)
	fmt.Fprintf(w, "n = %d measured runs per cell after %d warm-up runs; whole-process wall time in ms; nearest-rank percentiles\n", n, warmups)
	if n < minN {
		fmt.Fprintf(w, "warning: n < %d, not enough runs for a report\n", minN)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| runtime | isol8 cold p50 | p95 | runc p50 | p95 | ratio p50 (isol8/runc) | chroot p50 | p95 |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range results {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %.2f× | %s | %s |\n", r.Runtime,
			ms(r.ISOL8.P50), ms(r.ISOL8.P95), ms(r.Runc.P50), ms(r.Runc.P95), r.Ratio, ms(r.Chroot.P50), ms(r.Chroot.P95))
	}
	fmt.Fprintln(w)
	if i := slices.IndexFunc(results, func(r result) bool { return r.Runtime == "python" }); i >= 0 {
		fmt.Fprintf(w, "cold python p50 ratio %.2f× (target ≤ %.1f×)\n", results[i].Ratio, pythonMax)
	} else {
		fmt.Fprintf(w, "cold python p50 ratio not measured (target ≤ %.1f×)\n", pythonMax)
	}
}

func writeJSON(path string, started time.Time, m machine, n int, results []result, warm []warmResult, tput []throughputResult, drivers []dockerResult) error {
	b, err := json.MarshalIndent(struct {
		Started    time.Time          `json:"started"`
		N          int                `json:"n"`
		Warmups    int                `json:"warmups"`
		Machine    machine            `json:"machine"`
		Results    []result           `json:"results"`
		Warm       []warmResult       `json:"warm,omitempty"`
		Throughput []throughputResult `json:"throughput,omitempty"`
		Drivers    []dockerResult     `json:"drivers,omitempty"`
	}{started, n, warmups, m, results, warm, tput, drivers}, "", "  ")
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	return nil
}

// MarshalJSON writes durations as milliseconds.
func (s series) MarshalJSON() ([]byte, error) {
	toMs := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	samples := make([]float64, len(s.Samples))
	for i, d := range s.Samples {
		samples[i] = toMs(d)
	}
	return json.Marshal(struct {
		P50     float64   `json:"p50_ms"`
		P95     float64   `json:"p95_ms"`
		Samples []float64 `json:"samples_ms"`
	}{toMs(s.P50), toMs(s.P95), samples})
}

package engine

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cgroupUsage measures what a sandbox's cgroup used during one run: CPU
// time and peak memory of everything in the sandbox (the agent's share
// included), beside the agent's rusage of the program. It is read only when
// the audit log tracks resources; a layout it does not know (another
// driver's cgroup path) yields nothing.
type cgroupUsage struct {
	cpuMs       int64
	peakMemByte int64
}

type cgroupSample struct {
	cpuFile, peakFile string
	cpu0              int64
	v2                bool
}

// startCgroupSample notes the sandbox's CPU counter and resets its memory
// high-water mark (cgroup v1: memory.max_usage_in_bytes; v2: memory.peak,
// which kernels since 6.12 reset on write).
func startCgroupSample(id string) *cgroupSample {
	s := &cgroupSample{}
	if _, err := os.Stat(filepath.Join(cgroupRoot, "memory")); err == nil {
		s.cpuFile = filepath.Join(cgroupRoot, "cpuacct", "isol8", id, "cpuacct.usage")
		s.peakFile = filepath.Join(cgroupRoot, "memory", "isol8", id, "memory.max_usage_in_bytes")
	} else {
		s.v2 = true
		s.cpuFile = filepath.Join(cgroupRoot, "isol8", id, "cpu.stat")
		s.peakFile = filepath.Join(cgroupRoot, "isol8", id, "memory.peak")
	}
	cpu, ok := s.readCPU()
	if !ok {
		return nil
	}
	s.cpu0 = cpu
	reset := "0"
	if s.v2 {
		reset = "reset"
	}
	_ = os.WriteFile(s.peakFile, []byte(reset), 0) // best effort: without it the peak covers the sandbox's life
	return s
}

// readCPU returns the cgroup's CPU time in nanoseconds.
func (s *cgroupSample) readCPU() (int64, bool) {
	data, err := os.ReadFile(s.cpuFile)
	if err != nil {
		return 0, false
	}
	if !s.v2 {
		n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
		return n, err == nil
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n * 1000, err == nil
		}
	}
	return 0, false
}

// finish reads the counters after the run.
func (s *cgroupSample) finish() *cgroupUsage {
	if s == nil {
		return nil
	}
	cpu, ok := s.readCPU()
	if !ok {
		return nil
	}
	u := &cgroupUsage{cpuMs: (cpu - s.cpu0) / 1e6}
	if data, err := os.ReadFile(s.peakFile); err == nil {
		u.peakMemByte, _ = strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	}
	return u
}

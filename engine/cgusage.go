package engine

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cgroupUsage is what a sandbox's cgroup measured during one run: the peak
// memory of everything in the sandbox (the agent's share included), beside
// the agent's rusage of the program. CPU time comes from the rusage alone:
// the cgroup v1 CPU counter costs about 0.1 ms to read on this class of
// machine, more than the whole audit record. It is read only when the audit
// log tracks resources; a layout it does not know (another driver's cgroup
// path) yields nothing.
type cgroupUsage struct {
	peakMemByte int64
}

// cgroupSample holds the sandbox's memory high-water mark file open from
// before the run to after it.
type cgroupSample struct {
	f *os.File
}

// startCgroupSample resets the sandbox's memory high-water mark (cgroup
// v1: memory.max_usage_in_bytes; v2: memory.peak, which kernels since 6.12
// reset per open file on write) so that it covers this run only.
func startCgroupSample(id string) *cgroupSample {
	path := filepath.Join(cgroupRoot, "memory", "isol8", id, "memory.max_usage_in_bytes")
	reset := "0"
	if _, err := os.Stat(filepath.Join(cgroupRoot, "memory")); err != nil {
		path, reset = filepath.Join(cgroupRoot, "isol8", id, "memory.peak"), "reset"
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil
	}
	// Best effort: without the reset the peak covers the sandbox's life.
	_, _ = f.Write([]byte(reset))
	return &cgroupSample{f: f}
}

// finish reads the high-water mark after the run and closes the file.
func (s *cgroupSample) finish() *cgroupUsage {
	if s == nil {
		return nil
	}
	defer s.f.Close()
	buf := make([]byte, 64)
	n, err := s.f.ReadAt(buf, 0)
	if n == 0 && err != nil {
		return nil
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(buf[:n])), 10, 64)
	if err != nil {
		return nil
	}
	return &cgroupUsage{peakMemByte: v}
}

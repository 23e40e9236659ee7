package engine

import (
	"bytes"
	"fmt"
	"os"
	"strconv"

	"github.com/isol8/isol8/driver"
)

// A sandbox records the process that created it (pid and that process's
// start time, so a recycled pid is not mistaken for its creator). Cleanup
// skips sandboxes whose creator still runs: they are in use, by a server's
// pool for instance.

// ownerLabels are the labels naming this process as a sandbox's creator.
func ownerLabels() map[string]string {
	pid := os.Getpid()
	labels := map[string]string{driver.LabelPID: strconv.Itoa(pid)}
	if start, err := processStart(pid); err == nil {
		labels[driver.LabelPIDStart] = start
	}
	return labels
}

// ownerAlive reports whether the process that created a sandbox still runs,
// and its pid. Without a pid label nothing claims the sandbox.
func ownerAlive(labels map[string]string) (int, bool) {
	pid, err := strconv.Atoi(labels[driver.LabelPID])
	if err != nil || pid <= 0 {
		return 0, false
	}
	start, err := processStart(pid)
	if err != nil {
		return pid, false // no such process
	}
	want, ok := labels[driver.LabelPIDStart]
	return pid, !ok || want == start
}

// processStart returns a process's start time in clock ticks after boot
// (field 22 of /proc/<pid>/stat), which with the pid names a process
// uniquely.
func processStart(pid int) (string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return "", fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	fields := bytes.Fields(data[i+1:])
	const startField = 22 - 3 // fields after ") " start at field 3
	if len(fields) <= startField {
		return "", fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	return string(fields[startField]), nil
}

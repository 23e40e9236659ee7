package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

const (
	prCapbsetDrop = 24 // PR_CAPBSET_DROP
	capSetpcap    = 8  // CAP_SETPCAP
	capVersion3   = 0x20080522
)

// emptyBoundingSet drops every capability from the agent's bounding set,
// which every process the agent starts inherits: user code then has no
// capability it could ever regain, whatever it executes. The agent keeps its
// own effective and permitted sets (the bounding set only limits what an
// execve may grant), then gives up CAP_SETPCAP, which it held for this alone.
//
// Capabilities are per thread in Linux, so both steps run on every thread of
// the process (AllThreadsSyscall; the agent is built without cgo).
func emptyBoundingSet() error {
	last, err := lastCap()
	if err != nil {
		return err
	}
	for c := 0; c <= last; c++ {
		if _, _, e := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, prCapbsetDrop, uintptr(c), 0); e != 0 {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, e)
		}
	}
	return dropCap(capSetpcap)
}

func lastCap() (int, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, fmt.Errorf("read cap_last_cap: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("parse cap_last_cap: %w", err)
	}
	return n, nil
}

type capHeader struct {
	version uint32
	pid     int32
}

type capData struct {
	effective, permitted, inheritable uint32
}

// dropCap removes capability c from the effective, permitted and
// inheritable sets of every thread.
func dropCap(c uint) error {
	hdr := capHeader{version: capVersion3}
	var data [2]capData
	if _, _, e := syscall.RawSyscall(syscall.SYS_CAPGET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); e != 0 {
		return fmt.Errorf("capget: %w", e)
	}
	mask := ^uint32(1 << (c % 32))
	d := &data[c/32]
	d.effective &= mask
	d.permitted &= mask
	d.inheritable &= mask
	hdr.pid = 0
	if _, _, e := syscall.AllThreadsSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); e != 0 {
		return fmt.Errorf("capset without capability %d: %w", c, e)
	}
	return nil
}

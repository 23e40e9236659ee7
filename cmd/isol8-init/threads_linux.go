package main

import (
	"log"
	"os"
	"runtime"
)

// agentProcs is the agent's GOMAXPROCS. Fixing it keeps the number of
// threads the runtime wants bounded (and stops the runtime from following
// the cgroup's CPU limit); the agent moves bytes and waits, it needs no
// parallelism.
const agentProcs = 2

// reserveThreads brings the agent to about n OS threads before it reports
// ready; the engine then counts them (the cgroup's pids.current) and sets
// the pids limit to the user's limit plus that count. It must run first,
// while pids are free: the Go runtime aborts when it cannot create a thread,
// and it keeps idle threads for reuse, so threads made now serve the agent's
// blocking system calls later without new ones.
//
// Blocking k goroutines in a system call at once makes about k threads
// beside the runtimeThreads the runtime runs anyway (main, sysmon, the
// signal thread and its template, one spare). Threads are never trimmed or
// padded with LockOSThread: a locked thread makes the runtime create others
// later, on its own schedule, which would eat into the user's pids.
// TestAgentThreadsReserved checks the count from the host.
func reserveThreads(n int) {
	runtime.GOMAXPROCS(agentProcs)
	prestartThreads(max(n-runtimeThreads, 1))
	if have := countThreads(); have != n && have >= 0 {
		log.Printf("agent runs %d threads, %d are reserved", have, n)
	}
}

// runtimeThreads is how many threads the Go runtime runs beside those
// prestartThreads makes (measured; see reserveThreads).
const runtimeThreads = 5

// countThreads counts the agent's threads (-1 when /proc cannot tell).
func countThreads() int {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return -1
	}
	return len(ents)
}

package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// engineSockets are the sockets the sandbox's network namespace held when
// the agent started, before any user code ran: the engine's own. The
// engine opens the filtered network's proxy listener (127.0.0.1:8118) in
// the namespace between create and start and serves it for the sandbox's
// life; Docker's daemon keeps a netlink socket in every container's
// namespace ("sockets used 1"). The reset check expects those sockets and
// nothing else; the
// TIME_WAIT entries that connections to such a listener leave behind carry
// no data from one run to the next and are tolerated too.
type engineSockets struct {
	counts    map[string]int  // sockstat counters, "TCP inuse" → n
	listeners map[string]bool // /proc/net/tcp{,6} local addresses in LISTEN
}

var (
	engineBaseline engineSockets
	baselineOnce   sync.Once
)

// ensureEngineSockets takes the baseline once, when the first execution
// starts (or at the first reset check, if none ran): by then the engine has
// set up what it keeps in the namespace, and no user code has run. Not at
// the agent's start: on Docker the container runs before the engine can
// enter its namespace and open the proxy's listener, so a baseline taken
// at start raced the listener and a reused filtered sandbox failed its
// reset check.
func ensureEngineSockets() { baselineOnce.Do(recordEngineSockets) }

// recordEngineSockets takes the baseline (through ensureEngineSockets).
func recordEngineSockets() {
	b := engineSockets{counts: map[string]int{}, listeners: map[string]bool{}}
	for _, f := range []string{"sockstat", "sockstat6"} {
		data, err := os.ReadFile("/proc/net/" + f)
		if err != nil {
			continue
		}
		for _, c := range nonZeroSockstat(string(data)) {
			name, n := splitCounter(c)
			b.counts[name] += n
		}
	}
	for _, t := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile("/proc/net/" + t)
		if err != nil {
			continue
		}
		for _, f := range tableRows(data) {
			if len(f) > 3 && f[3] == tcpListen {
				b.listeners[f[1]] = true
			}
		}
	}
	engineBaseline = b
}

// TCP states in /proc/net/tcp.
const (
	tcpTimeWait = "06"
	tcpListen   = "0A"
)

// splitCounter splits "TCP inuse 3" into "TCP inuse" and 3.
func splitCounter(c string) (string, int) {
	i := strings.LastIndexByte(c, ' ')
	if i < 0 {
		return c, 0
	}
	n, _ := strconv.Atoi(c[i+1:])
	return c[:i], n
}

// tableRows returns the fields of each row of a /proc/net table, header
// excluded.
func tableRows(data []byte) [][]string {
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	var rows [][]string
	for _, l := range lines[1:] {
		rows = append(rows, strings.Fields(string(l)))
	}
	return rows
}

// tolerated reports a row of table that is the engine's: one of its
// listeners, or a TIME_WAIT entry of a connection to one.
func (b engineSockets) tolerated(table string, f []string) bool {
	if len(b.listeners) == 0 || (table != "tcp" && table != "tcp6") || len(f) < 4 {
		return false
	}
	switch f[3] {
	case tcpListen:
		return b.listeners[f[1]]
	case tcpTimeWait:
		return b.listeners[f[1]] || b.listeners[f[2]]
	}
	return false
}

// countRows counts a table's rows that are not the engine's, and the
// engine's TIME_WAIT rows.
func (b engineSockets) countRows(table string, data []byte) (left, engineTW int) {
	for _, f := range tableRows(data) {
		switch {
		case !b.tolerated(table, f):
			left++
		case f[3] == tcpTimeWait:
			engineTW++
		}
	}
	return left, engineTW
}

// excess drops from nonzero counters what the baseline and the engine's
// TIME_WAIT entries account for.
func (b engineSockets) excess(counters []string, engineTW int) []string {
	var out []string
	for _, c := range counters {
		name, n := splitCounter(c)
		n -= b.counts[name]
		if name == "TCP tw" {
			n -= engineTW
		}
		if n > 0 {
			out = append(out, fmt.Sprintf("%s %d", name, n))
		}
	}
	return out
}

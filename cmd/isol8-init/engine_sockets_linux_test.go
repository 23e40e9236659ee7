package main

import (
	"slices"
	"testing"
)

// The engine's listener and TIME_WAIT entries of connections to it are not
// left-overs; any other socket is, whatever its state.
func TestEngineSocketsTolerated(t *testing.T) {
	b := engineSockets{
		counts:    map[string]int{"sockets used": 1, "TCP inuse": 1},
		listeners: map[string]bool{"0100007F:1FB6": true},
	}
	tcp := []byte(`  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1FB6 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
   1: 0100007F:A1B2 0100007F:1FB6 06 00000000:00000000 03:00000000 00000000     0        0 0 3
   2: 0100007F:1FB6 0100007F:A1B4 06 00000000:00000000 03:00000000 00000000     0        0 0 3
`)
	if left, tw := b.countRows("tcp", tcp); left != 0 || tw != 2 {
		t.Fatalf("engine rows: left %d, tw %d; want 0, 2", left, tw)
	}
	// Counters: the baseline and the engine's TIME_WAITs account for all.
	if got := b.excess([]string{"sockets used 1", "TCP inuse 1", "TCP tw 2"}, 2); len(got) != 0 {
		t.Fatalf("excess = %v", got)
	}
	user := append(tcp, []byte(`   3: 0100007F:270F 00000000:0000 0A 00000000:00000000 00:00000000 00000000   100        0 9 1
   4: 0100007F:A1B6 0100007F:270F 06 00000000:00000000 03:00000000 00000000     0        0 0 3
`)...)
	if left, tw := b.countRows("tcp", user); left != 2 || tw != 2 {
		t.Fatalf("user rows: left %d, tw %d; want 2, 2", left, tw)
	}
	got := b.excess([]string{"sockets used 2", "TCP inuse 2", "TCP tw 3"}, 2)
	if !slices.Equal(got, []string{"sockets used 1", "TCP inuse 1", "TCP tw 1"}) {
		t.Fatalf("excess = %v", got)
	}
	// Without a baseline nothing is tolerated (network none and host).
	if left, _ := (engineSockets{}).countRows("tcp", tcp); left != 3 {
		t.Fatalf("no baseline: left %d, want 3", left)
	}
}

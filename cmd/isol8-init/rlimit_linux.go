package main

import (
	"log"
	"os"
	"strconv"
	"syscall"

	"github.com/isol8/isol8/oci"
)

// In a sandbox with its own user namespace the engine cannot have the
// runtime set RLIMIT_NOFILE, so it passes the value here; the agent lowers
// its own soft and hard limit before it starts anything, and every process
// it runs inherits it.
func init() {
	v, ok := os.LookupEnv(oci.InitNofileEnv)
	if !ok {
		return
	}
	os.Unsetenv(oci.InitNofileEnv)
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n == 0 {
		log.Fatalf("isol8-init: bad %s=%q", oci.InitNofileEnv, v)
	}
	// Raising the hard limit is not possible from inside the namespace:
	// keep the lower one the runtime gave us.
	var cur syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &cur); err == nil && cur.Max < n {
		n = cur.Max
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
		log.Fatalf("isol8-init: set RLIMIT_NOFILE %d: %v", n, err)
	}
}

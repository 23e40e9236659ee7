package main

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/isol8/isol8/config"
)

// BenchmarkDebugRunLines is the cost of everything --debug adds to one
// `isol8 run -e 'print(1)'`: the option lines and the engine's lifecycle
// and completion lines, written to /dev/null through the real handler (one
// write syscall per line, as on a terminal).
func BenchmarkDebugRunLines(b *testing.B) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer null.Close()
	a := newApp(nil, null, null, map[string]string{}, b.TempDir())
	log := a.logger(true)
	f := &runFlags{set: map[string]bool{"debug": true, "eval": true}}
	cfg := config.Defaults()
	o := deriveOptions(f, cfg, "python", nil)
	id := "isol8-0123456789abcdef"
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		logOptions(log, f, cfg, o)
		log.Debug("image resolve", "image", "isol8:python", "runtime", "python", "ok", true, "dur", 3*time.Millisecond)
		log.Debug("sandbox create", "container", id, "dur", 70*time.Millisecond)
		log.Debug("sandbox start", "container", id, "dur", 8*time.Millisecond)
		log.Debug("agent ready", "container", id, "dur", 30*time.Millisecond)
		log.Debug("pool acquire", "result", "miss", "image", "isol8:python", "container", id, "dur", 100*time.Millisecond)
		log.Debug("execution done", "container", id, "exitCode", 0, "durationMs", 9, "truncated", false, "timedOut", false,
			"oomKilled", false, "stdoutBytes", 2, "stderrBytes", 0, "cpuTimeMs", 9, "cpuPercent", 100.0, "peakMemoryMB", 7.5)
		log.Debug("sandbox destroy", "container", id, "dur", 30*time.Millisecond, "error", errors.New("x"))
	}
}

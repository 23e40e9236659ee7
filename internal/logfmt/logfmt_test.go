package logfmt

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLineFormat(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(New(&buf, slog.LevelDebug))
	log.Debug("sandbox create", "container", "isol8-ab", "dur", 1500*time.Microsecond)
	log.Info("option", "name", "memory", "from", "config /a b/c.json")
	log.With("sandbox", "x").WithGroup("g").Warn("remove sandbox failed", "error", errors.New("no such task"))
	log.Error("boom", "n", 3, "ok", true, "empty", "")
	want := "[DEBUG] sandbox create container=isol8-ab dur=1.50ms\n" +
		"[INFO] option name=memory from=\"config /a b/c.json\"\n" +
		"[WARN] remove sandbox failed (sandbox: x; g.error: no such task)\n" +
		"[ERR] boom (n: 3; ok: true; empty: )\n"
	if got := buf.String(); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestLevelFilter(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(New(&buf, slog.LevelWarn))
	log.Debug("hidden")
	log.Info("hidden")
	log.Warn("shown")
	if got := buf.String(); got != "[WARN] shown\n" {
		t.Fatalf("got %q", got)
	}
}

// Lines written from many goroutines never interleave.
func TestConcurrentLines(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(New(&buf, slog.LevelDebug))
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				log.With("w", i).Debug("tick", "j", j)
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 1000 {
		t.Fatalf("%d lines", len(lines))
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "[DEBUG] tick w=") || strings.Count(l, "[DEBUG]") != 1 {
			t.Fatalf("bad line %q", l)
		}
	}
}

package main

import (
	"context"
	"log/slog"
	"strconv"

	"github.com/isol8/isol8/config"
	"github.com/isol8/isol8/engine"
)

// origin names where a resolved option came from: "flag --x", the config
// file's path, or "default" (the engine's or the config's built-in value).
func origin(f *runFlags, cfg *config.Config, flag, key string) string {
	if flag != "" && f.given(flag) {
		return "flag --" + flag
	}
	if key != "" && cfg != nil {
		if src := cfg.Source(key); src != config.SourceDefault {
			return src
		}
	}
	return "default"
}

// logOptions writes one "[DEBUG] option" line per resolved engine option of
// a run, with its value and origin: the first thing to check when a run
// does not behave as configured.
func logOptions(log *slog.Logger, f *runFlags, cfg *config.Config, o engine.Options) {
	if !log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	mode := "default"
	if f.given("persistent") || f.given("session-id") {
		mode = "flag --persistent"
	}
	network := origin(f, cfg, "net", "defaults.network")
	if len(f.install) > 0 && !f.given("net") {
		network = "flag --install (filtered for package installs)"
	}
	orDef := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	n := func(v, def int64) string {
		if v == 0 {
			v = def
		}
		return strconv.FormatInt(v, 10)
	}
	cpu := o.CPULimit
	if cpu == 0 {
		cpu = engine.DefaultCPULimit
	}
	seccomp := engine.SeccompStrict
	if o.Security != nil && o.Security.Seccomp != "" {
		seccomp = o.Security.Seccomp
	}
	pool := "clean=1 dirty=1"
	if o.PoolSize != nil {
		pool = "clean=" + strconv.Itoa(o.PoolSize.Clean) + " dirty=" + strconv.Itoa(o.PoolSize.Dirty)
	}
	readonly := o.ReadonlyRootFs == nil || *o.ReadonlyRootFs
	streamCap := "none"
	if o.StreamMaxOutput > 0 {
		streamCap = strconv.FormatInt(o.StreamMaxOutput, 10)
	}
	rows := []struct{ name, value, from string }{
		{"mode", o.Mode, mode},
		{"network", o.Network, network},
		{"memory", orDef(o.MemoryLimit, engine.DefaultMemoryLimit), origin(f, cfg, "memory", "defaults.memoryLimit")},
		{"cpu", strconv.FormatFloat(cpu, 'g', -1, 64), origin(f, cfg, "cpu", "defaults.cpuLimit")},
		{"pids", n(o.PidsLimit, engine.DefaultPidsLimit), origin(f, cfg, "pids-limit", "")},
		{"timeoutMs", n(o.TimeoutMs, engine.DefaultTimeoutMs), origin(f, cfg, "timeout", "defaults.timeoutMs")},
		{"maxOutput", n(o.MaxOutputSize, engine.DefaultMaxOutputSize), origin(f, cfg, "max-output", "")},
		{"streamMaxOutput", streamCap, origin(f, cfg, "max-output", "")},
		{"sandboxSize", orDef(o.SandboxSize, engine.DefaultSandboxSize), origin(f, cfg, "sandbox-size", "defaults.sandboxSize")},
		{"tmpSize", orDef(o.TmpSize, engine.DefaultTmpSize), origin(f, cfg, "tmp-size", "defaults.tmpSize")},
		{"readonlyRootFs", strconv.FormatBool(readonly), origin(f, cfg, "writable", "defaults.readonlyRootFs")},
		{"seccomp", seccomp, origin(f, cfg, "", "security.seccomp")},
		{"poolStrategy", orDef(o.PoolStrategy, engine.PoolFast), "default"},
		{"poolSize", pool, "cli (one cold sandbox per run)"},
		{"image", orDef(o.Image, "runtime default"), origin(f, cfg, "image", "")},
		{"debug", strconv.FormatBool(o.Debug), origin(f, cfg, "debug", "debug")},
	}
	for _, r := range rows {
		log.Debug("option", "name", r.name, "value", r.value, "from", r.from)
	}
}

package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/isol8/isol8/config"
	"github.com/isol8/isol8/engine"
	"github.com/isol8/isol8/runtimes"
)

// Agent runtime defaults.
const (
	agentPidsLimit   = 200
	agentSandboxSize = "2g"
)

// runFlags holds `isol8 run`'s flags as given.
type runFlags struct {
	eval        string
	runtime     string
	net         string
	allow       []string
	deny        []string
	out         string
	persistent  bool
	sessionID   string
	timeout     string
	memory      string
	cpu         string
	image       string
	pidsLimit   string
	maxOutput   string
	secrets     []string
	sandboxSize string
	tmpSize     string
	stdin       string
	install     []string
	setup       []string
	workdir     string
	url         string
	github      string
	gist        string
	hash        string
	insecureURL bool
	host        string
	key         string
	noStream    bool
	persist     bool
	logNetwork  bool
	agentFlags  string
	files       string
	cmd         string
	writable    bool

	// set holds the names of the flags that appeared on the command line.
	set map[string]bool

	// Parsed by validate; zero means "not given".
	timeoutMs   int64
	cpuLimit    float64
	pidsLimitN  int64
	maxOutputN  int64
	secretsMap  map[string]string
	debugOption bool // --debug or config debug
}

func (f *runFlags) given(name string) bool { return f.set[name] }

// validate checks the numeric and size flags before anything starts and
// stores their parsed values.
func (f *runFlags) validate() error {
	var err error
	if f.given("timeout") {
		if f.timeoutMs, err = positiveInt(f.timeout); err != nil {
			return errf("Invalid --timeout value: %q. Expected a positive integer (ms).", f.timeout)
		}
	}
	if f.given("pids-limit") {
		if f.pidsLimitN, err = positiveInt(f.pidsLimit); err != nil {
			return errf("Invalid --pids-limit value: %q. Expected a positive integer.", f.pidsLimit)
		}
	}
	if f.given("max-output") {
		if f.maxOutputN, err = positiveInt(f.maxOutput); err != nil {
			return errf("Invalid --max-output value: %q. Expected a positive integer (bytes).", f.maxOutput)
		}
	}
	if f.given("cpu") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f.cpu), 64)
		if err != nil || !(v > 0) || v > 1e6 {
			return errf("Invalid --cpu value: %q. Expected a positive number (cores).", f.cpu)
		}
		f.cpuLimit = v
	}
	if err := f.validateSizes(); err != nil {
		return err
	}
	f.secretsMap = parseSecrets(f.secrets)
	if err := f.validateSecrets(); err != nil {
		return err
	}
	return f.validateFilters()
}

func positiveInt(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, err
	}
	if n <= 0 {
		return 0, fmt.Errorf("not positive: %d", n)
	}
	return n, nil
}

// parseSecrets turns KEY=VALUE items into a map, splitting at the first
// "="; items without "=" or with an empty key are ignored.
func parseSecrets(items []string) map[string]string {
	m := map[string]string{}
	for _, it := range items {
		k, v, ok := strings.Cut(it, "=")
		if !ok || k == "" {
			continue
		}
		m[k] = v
	}
	return m
}

// deriveOptions computes the engine options of a local run from the
// validated flags, the configuration and the resolved runtime: flag, then
// config file, then engine default. registry returns the anchored host
// patterns of the runtime's package registry; with --install they go to
// engine.InstallNetwork, the rule library users get too.
//
// Deviations from the reference, as the spec recommends ([GO]): an unset
// --net falls back to config defaults.network; config sandboxSize, tmpSize,
// readonlyRootFs and security apply as fallbacks; any form of --net
// (including --net=host) counts as given.
func deriveOptions(f *runFlags, cfg *config.Config, runtime string, registry func(runtime string) []string) engine.Options {
	o := engine.Options{
		Mode:          engine.ModeEphemeral,
		MemoryLimit:   cfg.Defaults.MemoryLimit,
		CPULimit:      cfg.Defaults.CPULimit,
		TimeoutMs:     cfg.Defaults.TimeoutMs,
		SandboxSize:   cfg.Defaults.SandboxSize,
		TmpSize:       cfg.Defaults.TmpSize,
		Image:         f.image,
		PidsLimit:     f.pidsLimitN,
		MaxOutputSize: f.maxOutputN,
		Debug:         f.debugOption || cfg.Debug,
		Persist:       f.persist,
		LogNetwork:    f.logNetwork,
		MaxConcurrent: cfg.MaxConcurrent,

		MaxTimeoutMs:        cfg.MaxTimeoutMs,
		MaxOutputPaths:      cfg.MaxOutputPaths,
		MaxOutputFilesBytes: cfg.MaxOutputFilesBytes,
		// A CLI run is one cold execution: no warm pool.
		PoolSize: &engine.PoolSize{},
		Security: &engine.Security{
			Seccomp:           cfg.Security.Seccomp,
			CustomProfilePath: cfg.Security.CustomProfilePath,
		},
	}
	if f.persistent || f.sessionID != "" {
		o.Mode = engine.ModePersistent
	}

	o.Network = cfg.Defaults.Network
	if f.given("net") {
		o.Network = f.net
	}
	if o.Network == "" {
		o.Network = engine.NetworkNone
	}

	// Operator setting from a trusted file only (config checks trust).
	o.AllowPrivateDestinations = cfg.Network.AllowPrivateDestinations
	whitelist := cfg.Network.Whitelist
	if len(f.allow) > 0 {
		whitelist = f.allow
	}
	blacklist := cfg.Network.Blacklist
	if len(f.deny) > 0 {
		blacklist = f.deny
	}

	if f.given("memory") {
		o.MemoryLimit = f.memory
	}
	if !f.noStream {
		// Streams pass everything through unless the user set a cap.
		o.StreamMaxOutput = f.maxOutputN
	}
	if f.cpuLimit > 0 {
		o.CPULimit = f.cpuLimit
	}
	if f.timeoutMs > 0 {
		o.TimeoutMs = f.timeoutMs
	}
	if f.given("tmp-size") {
		o.TmpSize = f.tmpSize
	}
	if f.given("sandbox-size") {
		o.SandboxSize = f.sandboxSize
	}
	readonly := cfg.Defaults.ReadonlyRootFs && !f.writable
	o.ReadonlyRootFs = &readonly
	if len(f.secretsMap) > 0 {
		o.Secrets = f.secretsMap
	}

	if runtime == runtimes.Agent {
		if !f.given("pids-limit") {
			o.PidsLimit = agentPidsLimit
		}
		if !f.given("sandbox-size") {
			o.SandboxSize = agentSandboxSize
		}
	}

	whitelist = dedupe(whitelist)
	blacklist = dedupe(blacklist)
	if len(whitelist) > 0 || len(blacklist) > 0 {
		o.NetworkFilter = &engine.NetworkFilter{Whitelist: whitelist, Blacklist: blacklist}
	}
	if len(f.install) > 0 {
		var patterns []string
		if registry != nil {
			patterns = registry(runtime)
		}
		o = engine.InstallNetwork(o, f.given("net"), patterns)
	}
	return o
}

// dedupe drops repeated entries, keeping the first occurrence's position.
func dedupe(list []string) []string {
	if len(list) == 0 {
		return []string{}
	}
	seen := make(map[string]bool, len(list))
	out := make([]string, 0, len(list))
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"

	"github.com/isol8/isol8/api"
)

// maxSafeInt is the largest integer a JSON number carries exactly
// (Number.MAX_SAFE_INTEGER); larger integers are rejected.
const maxSafeInt = 1<<53 - 1

// maxDurationMs keeps millisecond values convertible to time.Duration.
const maxDurationMs = math.MaxInt64 / 1_000_000

// maxCPU keeps floor(cpuLimit × 1e9) inside int64 (NanoCPUs).
const maxCPU = math.MaxInt64 / 1e9

// merge applies the JSON document data over c following the documented merge rules (docs/config.md):
// top-level scalars and lists replace, sections merge shallowly, null means
// "use the default", unknown keys (top-level or nested) are ignored.
func (c *Config) merge(data []byte) error {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("unexpected end of JSON input")
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := position(data, se.Offset)
			return fmt.Errorf("%v (line %d, column %d)", err, line, col)
		}
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("unexpected data after the top-level JSON value")
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return errors.New("top level must be a JSON object")
	}

	d := &decoder{set: c.set}
	steps := []func() error{
		func() error { return d.str(top, "", "$schema", &c.Schema) },
		func() error { return d.integer(top, "", "maxConcurrent", &c.MaxConcurrent) },
		func() error { return d.integer(top, "", "maxTimeoutMs", &c.MaxTimeoutMs) },
		func() error { return d.integer(top, "", "maxOutputPaths", &c.MaxOutputPaths) },
		func() error { return d.integer(top, "", "maxOutputFilesBytes", &c.MaxOutputFilesBytes) },
		func() error { return d.boolean(top, "", "debug", &c.Debug) },
		func() error { return d.str(top, "", "poolStrategy", &c.PoolStrategy) },
		func() error { return d.poolSize(top, &c.PoolSize) },
		func() error { return d.section(top, "defaults", c.mergeDefaults) },
		func() error { return d.section(top, "network", c.mergeNetwork) },
		func() error { return d.section(top, "cleanup", c.mergeCleanup) },
		func() error { return d.section(top, "security", c.mergeSecurity) },
		func() error { return d.section(top, "remoteCode", c.mergeRemoteCode) },
		func() error { return d.section(top, "audit", c.mergeAudit) },
		func() error { return d.section(top, "auth", c.mergeAuth) },
		func() error { return d.section(top, "containerd", c.mergeContainerd) },
		func() error { return d.prebuiltImages(top, &c.PrebuiltImages) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// position converts a byte offset into a 1-based line and column.
func position(data []byte, offset int64) (line, col int) {
	offset = min(max(offset, 0), int64(len(data)))
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - (bytes.LastIndexByte(before, '\n') + 1)
	return line, col
}

func (c *Config) mergeDefaults(d *decoder, m map[string]any) error {
	const s = "defaults"
	return first(
		d.integer(m, s, "timeoutMs", &c.Defaults.TimeoutMs),
		d.str(m, s, "memoryLimit", &c.Defaults.MemoryLimit),
		d.float(m, s, "cpuLimit", &c.Defaults.CPULimit),
		d.str(m, s, "network", &c.Defaults.Network),
		d.str(m, s, "sandboxSize", &c.Defaults.SandboxSize),
		d.str(m, s, "tmpSize", &c.Defaults.TmpSize),
		d.boolean(m, s, "readonlyRootFs", &c.Defaults.ReadonlyRootFs),
	)
}

func (c *Config) mergeNetwork(d *decoder, m map[string]any) error {
	const s = "network"
	return first(
		d.strings(m, s, "whitelist", &c.Network.Whitelist),
		d.strings(m, s, "blacklist", &c.Network.Blacklist),
		d.boolean(m, s, "allowPrivateDestinations", &c.Network.AllowPrivateDestinations),
	)
}

func (c *Config) mergeCleanup(d *decoder, m map[string]any) error {
	const s = "cleanup"
	return first(
		d.boolean(m, s, "autoPrune", &c.Cleanup.AutoPrune),
		d.integer(m, s, "maxContainerAgeMs", &c.Cleanup.MaxContainerAgeMs),
	)
}

func (c *Config) mergeSecurity(d *decoder, m map[string]any) error {
	const s = "security"
	return first(
		d.str(m, s, "seccomp", &c.Security.Seccomp),
		d.str(m, s, "customProfilePath", &c.Security.CustomProfilePath),
		d.userNS(m, &c.Security.UserNS),
	)
}

func (c *Config) mergeRemoteCode(d *decoder, m map[string]any) error {
	const s = "remoteCode"
	r := &c.RemoteCode
	return first(
		d.boolean(m, s, "enabled", &r.Enabled),
		d.strings(m, s, "allowedSchemes", &r.AllowedSchemes),
		d.strings(m, s, "allowedHosts", &r.AllowedHosts),
		d.strings(m, s, "blockedHosts", &r.BlockedHosts),
		d.integer(m, s, "maxCodeSize", &r.MaxCodeSize),
		d.integer(m, s, "fetchTimeoutMs", &r.FetchTimeoutMs),
		d.boolean(m, s, "requireHash", &r.RequireHash),
		d.boolean(m, s, "enableCache", &r.EnableCache),
		d.integer(m, s, "cacheTtl", &r.CacheTTL),
	)
}

func (c *Config) mergeAudit(d *decoder, m map[string]any) error {
	const s = "audit"
	a := &c.Audit
	return first(
		d.boolean(m, s, "enabled", &a.Enabled),
		d.str(m, s, "destination", &a.Destination),
		d.str(m, s, "logDir", &a.LogDir),
		d.str(m, s, "postLogScript", &a.PostLogScript),
		d.boolean(m, s, "trackResources", &a.TrackResources),
		d.integer(m, s, "retentionDays", &a.RetentionDays),
		d.boolean(m, s, "includeCode", &a.IncludeCode),
		d.boolean(m, s, "includeOutput", &a.IncludeOutput),
	)
}

func (c *Config) mergeAuth(d *decoder, m map[string]any) error {
	const s = "auth"
	a := &c.Auth
	return first(
		d.boolean(m, s, "enabled", &a.Enabled),
		d.str(m, s, "connectionString", &a.ConnectionString),
		d.integer(m, s, "defaultTtlMs", &a.DefaultTTLMs),
		d.integer(m, s, "cleanupIntervalMs", &a.CleanupIntervalMs),
	)
}

func (c *Config) mergeContainerd(d *decoder, m map[string]any) error {
	const s = "containerd"
	return first(
		d.str(m, s, "address", &c.Containerd.Address),
		d.str(m, s, "runtime", &c.Containerd.Runtime),
	)
}

// first returns the first non-nil error. Arguments are evaluated in order,
// so later assignments still happen; the config is discarded on error.
func first(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// decoder type-checks known keys and records which ones a file set.
type decoder struct {
	set map[string]bool
}

func dotted(section, key string) string {
	if section == "" {
		return key
	}
	return section + "." + key
}

// lookup returns the value of key; absent and null both mean "not set".
func (d *decoder) lookup(m map[string]any, section, key string) (any, string, bool) {
	name := dotted(section, key)
	v, ok := m[key]
	if !ok || v == nil {
		return nil, name, false
	}
	d.set[name] = true
	return v, name, true
}

func (d *decoder) section(top map[string]any, key string, merge func(*decoder, map[string]any) error) error {
	v, name, ok := d.lookup(top, "", key)
	if !ok {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%s must be an object", name)
	}
	return merge(d, m)
}

func (d *decoder) str(m map[string]any, section, key string, dst *string) error {
	v, name, ok := d.lookup(m, section, key)
	if !ok {
		return nil
	}
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("%s must be a string", name)
	}
	*dst = s
	return nil
}

func (d *decoder) boolean(m map[string]any, section, key string, dst *bool) error {
	v, name, ok := d.lookup(m, section, key)
	if !ok {
		return nil
	}
	b, ok := v.(bool)
	if !ok {
		return fmt.Errorf("%s must be a boolean", name)
	}
	*dst = b
	return nil
}

func (d *decoder) float(m map[string]any, section, key string, dst *float64) error {
	v, name, ok := d.lookup(m, section, key)
	if !ok {
		return nil
	}
	f, err := number(v, name)
	if err != nil {
		return err
	}
	*dst = f
	return nil
}

// integer accepts a JSON number with an integral value of magnitude at most
// 2^53-1 (so 3e4 and 30000.0 are fine, 1.5 and 1e300 are not).
func integer[T int | int64](d *decoder, m map[string]any, section, key string, dst *T) error {
	v, name, ok := d.lookup(m, section, key)
	if !ok {
		return nil
	}
	n, err := toInt(v, name)
	if err != nil {
		return err
	}
	*dst = T(n)
	return nil
}

func (d *decoder) integer(m map[string]any, section, key string, dst any) error {
	switch p := dst.(type) {
	case *int:
		return integer(d, m, section, key, p)
	case *int64:
		return integer(d, m, section, key, p)
	default:
		panic(fmt.Sprintf("config: integer destination %T", dst))
	}
}

func number(v any, name string) (float64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("%s must be a number", name)
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("%s is out of range: %s", name, n)
	}
	return f, nil
}

func toInt(v any, name string) (int64, error) {
	f, err := number(v, name)
	if err != nil {
		return 0, err
	}
	if f != math.Trunc(f) {
		return 0, fmt.Errorf("%s must be an integer", name)
	}
	if math.Abs(f) > maxSafeInt {
		return 0, fmt.Errorf("%s is out of range: %s", name, v)
	}
	return int64(f), nil
}

// strings replaces *dst with the given list (lists are never merged).
func (d *decoder) strings(m map[string]any, section, key string, dst *[]string) error {
	v, name, ok := d.lookup(m, section, key)
	if !ok {
		return nil
	}
	list, err := stringList(v, name)
	if err != nil {
		return err
	}
	*dst = list
	return nil
}

func stringList(v any, name string) ([]string, error) {
	items, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s must be an array of strings", name)
	}
	out := make([]string, 0, len(items))
	for i, it := range items {
		s, ok := it.(string)
		if !ok {
			return nil, fmt.Errorf("%s[%d] must be a string", name, i)
		}
		out = append(out, s)
	}
	return out, nil
}

// poolSize accepts a number n (clean = dirty = n) or {clean, dirty}, each
// member defaulting to 1.
func (d *decoder) poolSize(top map[string]any, dst *PoolSize) error {
	v, name, ok := d.lookup(top, "", "poolSize")
	if !ok {
		return nil
	}
	switch x := v.(type) {
	case json.Number:
		n, err := toInt(x, name)
		if err != nil {
			return err
		}
		*dst = PoolSize{Clean: int(n), Dirty: int(n), number: true}
		return nil
	case map[string]any:
		p := PoolSize{Clean: 1, Dirty: 1}
		if err := first(
			d.integer(x, name, "clean", &p.Clean),
			d.integer(x, name, "dirty", &p.Dirty),
		); err != nil {
			return err
		}
		*dst = p
		return nil
	default:
		return fmt.Errorf("%s must be a number or an object {clean, dirty}", name)
	}
}

func (d *decoder) prebuiltImages(top map[string]any, dst *[]PrebuiltImage) error {
	v, name, ok := d.lookup(top, "", "prebuiltImages")
	if !ok {
		return nil
	}
	items, ok := v.([]any)
	if !ok {
		return fmt.Errorf("%s must be an array", name)
	}
	out := make([]PrebuiltImage, 0, len(items))
	for i, it := range items {
		item := fmt.Sprintf("%s[%d]", name, i)
		m, ok := it.(map[string]any)
		if !ok {
			return fmt.Errorf("%s must be an object", item)
		}
		img := PrebuiltImage{InstallPackages: []string{}}
		if err := first(
			d.str(m, item, "tag", &img.Tag),
			d.str(m, item, "runtime", &img.Runtime),
			d.strings(m, item, "installPackages", &img.InstallPackages),
			d.str(m, item, "setupScript", &img.SetupScript),
		); err != nil {
			return err
		}
		if img.Tag == "" {
			return fmt.Errorf("%s.tag is required", item)
		}
		if img.Runtime == "" {
			return fmt.Errorf("%s.runtime is required", item)
		}
		out = append(out, img)
	}
	*dst = out
	return nil
}

// Validate checks value ranges and formats of a merged configuration. The
// error (invalid-argument class) names the offending key.
func (c *Config) Validate() error {
	if err := c.validate(); err != nil {
		return api.InvalidArgument(err)
	}
	return nil
}

func (c *Config) validate() error {
	checks := []error{
		atLeast("maxConcurrent", int64(c.MaxConcurrent), 1),
		duration("maxTimeoutMs", c.MaxTimeoutMs, 0),
		atLeast("maxOutputPaths", int64(c.MaxOutputPaths), 0),
		atLeast("maxOutputFilesBytes", c.MaxOutputFilesBytes, 0),
		oneOf("poolStrategy", c.PoolStrategy, "fast", "secure"),
		atLeast("poolSize.clean", int64(c.PoolSize.Clean), 0),
		atLeast("poolSize.dirty", int64(c.PoolSize.Dirty), 0),

		duration("defaults.timeoutMs", c.Defaults.TimeoutMs, 1),
		size("defaults.memoryLimit", c.Defaults.MemoryLimit),
		cpu("defaults.cpuLimit", c.Defaults.CPULimit),
		oneOf("defaults.network", c.Defaults.Network, "none", "host", "filtered"),
		size("defaults.sandboxSize", c.Defaults.SandboxSize),
		size("defaults.tmpSize", c.Defaults.TmpSize),

		patterns("network.whitelist", c.Network.Whitelist),
		patterns("network.blacklist", c.Network.Blacklist),

		duration("cleanup.maxContainerAgeMs", c.Cleanup.MaxContainerAgeMs, 0),

		oneOf("security.seccomp", c.Security.Seccomp, "strict", "unconfined", "custom"),
		validUserNS(c.Security.UserNS),

		patterns("remoteCode.allowedHosts", c.RemoteCode.AllowedHosts),
		patterns("remoteCode.blockedHosts", c.RemoteCode.BlockedHosts),
		atLeast("remoteCode.maxCodeSize", c.RemoteCode.MaxCodeSize, 0),
		duration("remoteCode.fetchTimeoutMs", c.RemoteCode.FetchTimeoutMs, 1),
		atLeast("remoteCode.cacheTtl", c.RemoteCode.CacheTTL, 0),

		atLeast("audit.retentionDays", int64(c.Audit.RetentionDays), 0),

		duration("auth.defaultTtlMs", c.Auth.DefaultTTLMs, 1),
		duration("auth.cleanupIntervalMs", c.Auth.CleanupIntervalMs, 1),

		nonEmpty("containerd.runtime", c.Containerd.Runtime),
	}
	return first(checks...)
}

func atLeast(name string, v, min int64) error {
	if v < min {
		if min == 1 {
			return fmt.Errorf("%s must be >= 1 (got %d)", name, v)
		}
		return fmt.Errorf("%s must be >= %d (got %d)", name, min, v)
	}
	return nil
}

func duration(name string, ms, min int64) error {
	if err := atLeast(name, ms, min); err != nil {
		return err
	}
	if ms > maxDurationMs {
		return fmt.Errorf("%s is too large (got %d, max %d)", name, ms, int64(maxDurationMs))
	}
	return nil
}

func cpu(name string, v float64) error {
	if !(v > 0) {
		return fmt.Errorf("%s must be > 0 (got %s)", name, strconv.FormatFloat(v, 'f', -1, 64))
	}
	if v > maxCPU {
		return fmt.Errorf("%s is too large (got %s)", name, strconv.FormatFloat(v, 'g', -1, 64))
	}
	return nil
}

func oneOf(name, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	list := ""
	for i, a := range allowed {
		if i > 0 {
			list += ", "
		}
		list += a
	}
	return fmt.Errorf("%s must be one of %s (got %q)", name, list, v)
}

func nonEmpty(name, v string) error {
	if v == "" {
		return fmt.Errorf("%s must not be empty", name)
	}
	return nil
}

func size(name, v string) error {
	n, err := ParseMemoryLimit(v)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if n <= 0 {
		return fmt.Errorf("%s must be greater than 0 (got %q)", name, v)
	}
	return nil
}

func patterns(name string, list []string) error {
	for i, p := range list {
		if _, err := regexp.Compile(p); err != nil {
			return fmt.Errorf("%s[%d]: invalid pattern %q: %v", name, i, p, err)
		}
	}
	return nil
}

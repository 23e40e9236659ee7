package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// JSON returns the merged configuration as `isol8 config --json` prints it:
// 2-space indented, unset optional values omitted, "$schema" and unknown
// keys dropped, no HTML escaping, no trailing newline.
func (c *Config) JSON() ([]byte, error) {
	out := *c
	out.Schema = ""
	out.Network.Whitelist = nonNil(out.Network.Whitelist)
	out.Network.Blacklist = nonNil(out.Network.Blacklist)
	out.RemoteCode.AllowedSchemes = nonNil(out.RemoteCode.AllowedSchemes)
	out.RemoteCode.AllowedHosts = nonNil(out.RemoteCode.AllowedHosts)
	out.RemoteCode.BlockedHosts = nonNil(out.RemoteCode.BlockedHosts)
	if out.PrebuiltImages == nil {
		out.PrebuiltImages = []PrebuiltImage{}
	}
	imgs := make([]PrebuiltImage, len(out.PrebuiltImages))
	for i, img := range out.PrebuiltImages {
		img.InstallPackages = nonNil(img.InstallPackages)
		imgs[i] = img
	}
	out.PrebuiltImages = imgs

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&out); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Human renders the `isol8 config` text (docs/cli.md), followed by the
// containerd section. It starts and ends with an empty line.
func (c *Config) Human() string {
	var b strings.Builder
	line := func(label, value string) { fmt.Fprintf(&b, "  %-17s%s\n", label+":", value) }
	head := func(title string) { fmt.Fprintf(&b, "\n  ── %s ──\n", title) }

	b.WriteString("\nIsol8 Configuration\n\n")
	if c.path != "" {
		fmt.Fprintf(&b, "  Source: %s\n", c.path)
	} else {
		b.WriteString("  Source: defaults (no config file found)\n")
	}

	head("General")
	line("Max concurrent", strconv.Itoa(c.MaxConcurrent))

	head("Defaults")
	line("Timeout", fmt.Sprintf("%dms", c.Defaults.TimeoutMs))
	line("Memory limit", c.Defaults.MemoryLimit)
	line("CPU limit", formatFloat(c.Defaults.CPULimit))
	line("Network", c.Defaults.Network)
	line("Sandbox size", c.Defaults.SandboxSize)
	line("Tmp size", c.Defaults.TmpSize)

	head("Network Filter")
	line("Whitelist", list(c.Network.Whitelist))
	if c.Network.AllowPrivateDestinations { // isol8's own key: shown only when set
		line("Private dests", "allowed (SSRF guard off)")
	}

	head("Remote Code")
	line("Enabled", yesNo(c.RemoteCode.Enabled))
	line("Schemes", strings.Join(c.RemoteCode.AllowedSchemes, ", "))
	line("Max code size", fmt.Sprintf("%d bytes", c.RemoteCode.MaxCodeSize))
	line("Fetch timeout", fmt.Sprintf("%dms", c.RemoteCode.FetchTimeoutMs))
	line("Require hash", yesNo(c.RemoteCode.RequireHash))
	// The reference shows network.blacklist here; keep that layout.
	line("Blacklist", list(c.Network.Blacklist))

	head("Cleanup")
	line("Auto-prune", yesNo(c.Cleanup.AutoPrune))
	line("Max idle time", fmt.Sprintf("%dms (%smin)", c.Cleanup.MaxContainerAgeMs,
		formatFloat(float64(c.Cleanup.MaxContainerAgeMs)/60000)))

	head("Pool Defaults (Serve)")
	line("Pool strategy", c.PoolStrategy)
	line("Pool size", c.PoolSize.String())

	head("Containerd")
	addr := c.Containerd.Address
	if addr == "" {
		addr = "(default)"
	}
	line("Address", addr)
	line("Runtime", c.Containerd.Runtime)

	head("Images")
	line("Source", c.Images.Source)
	rts := make([]string, 0, len(c.Images.Registry))
	for rt := range c.Images.Registry {
		rts = append(rts, rt)
	}
	sort.Strings(rts)
	for _, rt := range rts {
		line("Registry "+rt, c.Images.Registry[rt])
	}
	line("Prebuilt images", strconv.Itoa(len(c.PrebuiltImages)))

	b.WriteString("\n")
	return b.String()
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func yesNo(v bool) string {
	if v {
		return "yes"
	}
	return "no"
}

func list(items []string) string {
	if len(items) == 0 {
		return "(none)"
	}
	return strings.Join(items, ", ")
}

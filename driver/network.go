package driver

import (
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isol8/isol8/api"
)

// NetworkMode says what a driver does about a sandbox's network namespace.
type NetworkMode int

const (
	// NetworkFromSpec leaves the network to the spec: no network namespace
	// entry is the host's network, an entry without a path is a fresh,
	// empty namespace nobody outside needs to enter. The driver reports no
	// path. It is the zero value.
	NetworkFromSpec NetworkMode = iota
	// NetworkJoin runs the sandbox in the existing namespace at Path, which
	// the spec names too (oci.WithNetwork(oci.NetworkFiltered, path)). The
	// caller owns the namespace: it made it, keeps it alive while the
	// sandbox runs and removes it afterwards.
	NetworkJoin
	// NetworkFresh runs the sandbox in a new namespace (the spec has a
	// network namespace entry without a path) and makes the driver report,
	// through Sandbox.NetNSPath, a path to it that stays valid until the
	// sandbox is deleted, so the caller can enter it (setns) and serve
	// something on its loopback.
	NetworkFresh
)

// NetworkAttachment is the network namespace a sandbox runs in, as far as
// its creator needs to reach into it. The zero value is NetworkFromSpec.
type NetworkAttachment struct {
	Mode NetworkMode
	// Path is the namespace to join, for NetworkJoin only: an nsfs file
	// such as a bind mount pinning a namespace, or /proc/<pid>/ns/net.
	Path string
}

// JoinNetwork attaches a sandbox to the network namespace at path.
func JoinNetwork(path string) NetworkAttachment {
	return NetworkAttachment{Mode: NetworkJoin, Path: path}
}

// FreshNetwork gives a sandbox a new network namespace whose path the
// driver reports.
func FreshNetwork() NetworkAttachment { return NetworkAttachment{Mode: NetworkFresh} }

// Check reports (as an invalid-argument error) an attachment that is
// malformed or contradicts spec: the spec is the engine's statement of the
// sandbox, the attachment only asks the driver to honour and report it.
func (a NetworkAttachment) Check(spec *specs.Spec) error {
	var ns *specs.LinuxNamespace
	if spec != nil && spec.Linux != nil {
		for i := range spec.Linux.Namespaces {
			if spec.Linux.Namespaces[i].Type == specs.NetworkNamespace {
				ns = &spec.Linux.Namespaces[i]
			}
		}
	}
	switch a.Mode {
	case NetworkFromSpec:
		if a.Path != "" {
			return api.InvalidArgumentf("network attachment: a path (%q) needs the join mode", a.Path)
		}
	case NetworkJoin:
		if a.Path == "" || !path.IsAbs(a.Path) || strings.ContainsRune(a.Path, 0) || path.Clean(a.Path) != a.Path {
			return api.InvalidArgumentf("network attachment: a network namespace to join needs a clean absolute path, got %q", a.Path)
		}
		if ns == nil || ns.Path != a.Path {
			return api.InvalidArgumentf("network attachment: joining %s but the spec says %s", a.Path, describeNetNS(ns))
		}
	case NetworkFresh:
		if a.Path != "" {
			return api.InvalidArgumentf("network attachment: a fresh network namespace takes no path, got %q", a.Path)
		}
		if ns == nil || ns.Path != "" {
			return api.InvalidArgumentf("network attachment: a fresh network namespace but the spec says %s", describeNetNS(ns))
		}
	default:
		return api.InvalidArgumentf("network attachment: unknown mode %d", a.Mode)
	}
	return nil
}

func describeNetNS(ns *specs.LinuxNamespace) string {
	switch {
	case ns == nil:
		return "the host's network"
	case ns.Path == "":
		return "a new network namespace"
	default:
		return "join " + ns.Path
	}
}

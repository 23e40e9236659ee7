package driver

import (
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func specWithNetNS(ns *specs.LinuxNamespace) *specs.Spec {
	s := &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}}}}
	if ns != nil {
		s.Linux.Namespaces = append(s.Linux.Namespaces, *ns)
	}
	return s
}

// An attachment must agree with the spec: the spec states the sandbox,
// the attachment only asks the driver to honour and report it.
func TestNetworkAttachmentCheck(t *testing.T) {
	host := specWithNetNS(nil)
	fresh := specWithNetNS(&specs.LinuxNamespace{Type: specs.NetworkNamespace})
	joined := specWithNetNS(&specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/run/isol8/netns/a"})
	cases := []struct {
		name string
		att  NetworkAttachment
		spec *specs.Spec
		ok   bool
	}{
		{"spec's host network", NetworkAttachment{}, host, true},
		{"spec's fresh namespace", NetworkAttachment{}, fresh, true},
		{"spec's joined namespace", NetworkAttachment{}, joined, true},
		{"no spec", NetworkAttachment{}, nil, true},
		{"path without join", NetworkAttachment{Path: "/run/isol8/netns/a"}, joined, false},
		{"join what the spec joins", JoinNetwork("/run/isol8/netns/a"), joined, true},
		{"join another", JoinNetwork("/run/isol8/netns/b"), joined, false},
		{"join, spec fresh", JoinNetwork("/run/isol8/netns/a"), fresh, false},
		{"join, spec host", JoinNetwork("/run/isol8/netns/a"), host, false},
		{"join relative", JoinNetwork("netns/a"), specWithNetNS(&specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "netns/a"}), false},
		{"join unclean", JoinNetwork("/run/isol8/../netns"), specWithNetNS(&specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/run/isol8/../netns"}), false},
		{"join empty", JoinNetwork(""), fresh, false},
		{"join NUL", JoinNetwork("/a\x00b"), fresh, false},
		{"fresh", FreshNetwork(), fresh, true},
		{"fresh, spec host", FreshNetwork(), host, false},
		{"fresh, spec joins", FreshNetwork(), joined, false},
		{"fresh with a path", NetworkAttachment{Mode: NetworkFresh, Path: "/x"}, fresh, false},
		{"unknown mode", NetworkAttachment{Mode: 7}, fresh, false},
	}
	for _, c := range cases {
		err := c.att.Check(c.spec)
		if c.ok && err != nil {
			t.Errorf("%s: Check = %v, want nil", c.name, err)
		}
		if !c.ok && !errdefs.IsInvalidArgument(err) {
			t.Errorf("%s: Check = %v, want an invalid-argument error", c.name, err)
		}
	}
}

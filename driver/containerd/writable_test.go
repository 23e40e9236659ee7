package containerd

import (
	"slices"
	"testing"

	"github.com/containerd/containerd/v2/core/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestLowerDirs(t *testing.T) {
	for _, tc := range []struct {
		view []mount.Mount
		want []string
	}{
		{[]mount.Mount{{Type: "bind", Source: "/s/1/fs", Options: []string{"ro", "rbind"}}}, []string{"/s/1/fs"}},
		{[]mount.Mount{{Type: "overlay", Source: "overlay", Options: []string{"index=off", "lowerdir=/s/2/fs:/s/1/fs"}}}, []string{"/s/2/fs", "/s/1/fs"}},
		{[]mount.Mount{{Type: "overlay", Options: []string{"upperdir=/x"}}}, nil},
		{nil, nil},
	} {
		got, err := lowerDirs(tc.view)
		if (err != nil) != (tc.want == nil) || !slices.Equal(got, tc.want) {
			t.Errorf("lowerDirs(%v) = %v, %v; want %v", tc.view, got, err, tc.want)
		}
	}
}

func TestUpperSize(t *testing.T) {
	limit := int64(128 << 20)
	if got := upperSize(&specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}}}); got != limit {
		t.Errorf("upperSize = %d, want the memory limit %d", got, limit)
	}
	if got := upperSize(&specs.Spec{}); got != defaultUpperSize {
		t.Errorf("upperSize without a limit = %d", got)
	}
}

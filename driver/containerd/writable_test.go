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
	for limit, want := range map[int64]int64{
		128 << 20: 96 << 20,       // a quarter kept free
		16 << 20:  8 << 20,        // at least 8 MiB, at most half
		24 << 20:  16 << 20,       // the 8 MiB floor
		4 << 30:   4<<30 - 64<<20, // the 64 MiB cap
	} {
		spec := &specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}}}
		if got := upperSize(spec); got != want {
			t.Errorf("upperSize(memory %d) = %d, want %d", limit, got, want)
		}
	}
	if got := upperSize(&specs.Spec{}); got != defaultUpperSize {
		t.Errorf("upperSize without a limit = %d", got)
	}
}

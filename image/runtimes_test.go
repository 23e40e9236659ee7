package image

import (
	"slices"
	"testing"

	"github.com/isol8/isol8/runtimes"
)

// The images this package builds are exactly the runtimes this build can
// run: the runtime list lives in package runtimes, and a runtime added there
// without a recipe here (or the reverse) fails this test.
func TestRuntimesMatchAdapters(t *testing.T) {
	built := slices.Sorted(slices.Values(Runtimes))
	runnable := slices.Sorted(slices.Values(runtimes.Available()))
	if !slices.Equal(built, runnable) {
		t.Fatalf("image recipes %v, runnable runtimes %v", built, runnable)
	}
	for _, rt := range Runtimes {
		r, err := runtimes.Get(rt)
		if err != nil {
			t.Fatal(err)
		}
		if r.Image != Name(rt) {
			t.Errorf("runtime %s runs image %s, setup builds %s", rt, r.Image, Name(rt))
		}
	}
}

package engine

import (
	"os"
	"strconv"
	"testing"

	"github.com/isol8/isol8/driver"
)

func TestOwnerAlive(t *testing.T) {
	self := ownerLabels()
	if self[driver.LabelPID] != strconv.Itoa(os.Getpid()) || self[driver.LabelPIDStart] == "" {
		t.Fatalf("ownerLabels() = %v", self)
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		alive  bool
	}{
		{"this process", self, true},
		{"this pid, no start label (older isol8)", map[string]string{driver.LabelPID: strconv.Itoa(os.Getpid())}, true},
		{"recycled pid", map[string]string{driver.LabelPID: strconv.Itoa(os.Getpid()), driver.LabelPIDStart: "1"}, false},
		{"no such process", map[string]string{driver.LabelPID: "2147483646"}, false},
		{"no labels", map[string]string{}, false},
		{"garbage pid", map[string]string{driver.LabelPID: "x"}, false},
		{"negative pid", map[string]string{driver.LabelPID: "-1"}, false},
	} {
		if _, alive := ownerAlive(tc.labels); alive != tc.alive {
			t.Errorf("%s: alive = %v, want %v", tc.name, alive, tc.alive)
		}
	}
}

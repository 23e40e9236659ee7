package config

import (
	"errors"
	"testing"

	"github.com/containerd/errdefs"
)

// FuzzParse: any document either parses into a configuration that
// validates, or fails with an invalid-argument error; it never panics.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"maxConcurrent":4,"defaults":{"timeoutMs":1000,"memoryLimit":"1g"}}`))
	f.Add([]byte(`{"poolSize":3,"network":{"whitelist":["^a$"],"blacklist":["("]}}`))
	f.Add([]byte(`{"prebuiltImages":[{"tag":"t","runtime":"python","installPackages":["x"]}]}`))
	f.Add([]byte("\xef\xbb\xbf{}"))
	f.Add([]byte(`{"defaults":{"cpuLimit":1e309}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("error is not invalid-argument: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed config does not validate: %v", err)
		}
		if _, err := c.JSON(); err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("config cannot be shown: %v", err)
		}
	})
}

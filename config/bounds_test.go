package config

import (
	"strings"
	"testing"
)

func TestRequestBoundKeys(t *testing.T) {
	c, err := Parse([]byte(`{"maxTimeoutMs": 7200000, "maxOutputPaths": 5, "maxOutputFilesBytes": 1000}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxTimeoutMs != 7200000 || c.MaxOutputPaths != 5 || c.MaxOutputFilesBytes != 1000 {
		t.Fatalf("got %d %d %d", c.MaxTimeoutMs, c.MaxOutputPaths, c.MaxOutputFilesBytes)
	}
	d := Defaults()
	if d.MaxTimeoutMs != 0 || d.MaxOutputPaths != 0 || d.MaxOutputFilesBytes != 0 {
		t.Fatal("unset bounds must stay zero (the engine's defaults)")
	}
	for _, bad := range []string{
		`{"maxTimeoutMs": -1}`,
		`{"maxTimeoutMs": 9223372036854775807}`,
		`{"maxOutputPaths": -3}`,
		`{"maxOutputFilesBytes": -1}`,
		`{"maxOutputPaths": "many"}`,
	} {
		_, err := Parse([]byte(bad))
		if err == nil || !strings.Contains(err.Error(), "max") {
			t.Errorf("%s: want an error, got %v", bad, err)
		}
	}
}

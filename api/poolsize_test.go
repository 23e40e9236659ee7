package api

import (
	"encoding/json"
	"testing"
)

func TestPoolSizeJSON(t *testing.T) {
	for in, want := range map[string]PoolSize{`3`: {3, 3}, `{"clean":2,"dirty":1}`: {2, 1}, `{}`: {}} {
		var p PoolSize
		if err := json.Unmarshal([]byte(in), &p); err != nil || p != want {
			t.Errorf("%s: %+v %v", in, p, err)
		}
	}
	for _, bad := range []string{`-1`, `1.5`, `"x"`, `[1]`} {
		var p PoolSize
		if err := json.Unmarshal([]byte(bad), &p); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

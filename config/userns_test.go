package config

import (
	"strings"
	"testing"
)

func TestUserNSKey(t *testing.T) {
	c, err := Parse([]byte(`{"security":{"userns":{"base":2000000,"count":8}}}`))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Security.UserNS.Effective()
	want := UserNS{Base: 2000000, Size: DefaultUserNSSize, Count: 8, StateDir: DefaultUserNSStateDir}
	if got != want {
		t.Fatalf("effective %+v, want %+v", got, want)
	}
	if !c.set["security.userns.base"] || c.set["security.userns.size"] {
		t.Fatalf("set keys %v", c.set)
	}
	d := Defaults()
	if d.Security.UserNS != nil || d.Security.UserNS.Effective() != (UserNS{Base: 1_000_000, Size: 65536, Count: 1024, StateDir: "/var/lib/isol8/userns"}) {
		t.Fatalf("defaults %+v", d.Security.UserNS.Effective())
	}
	if c, err := Parse([]byte(`{"security":{"userns":null}}`)); err != nil || c.Security.UserNS != nil {
		t.Fatalf("null: %v %+v", err, c)
	}
	if data, _ := c.JSON(); !strings.Contains(string(data), `"userns": {`) {
		t.Fatalf("JSON view lacks the set key:\n%s", data)
	}
}

func TestUserNSKeyErrors(t *testing.T) {
	cases := map[string]string{
		`{"security":{"userns":5}}`:                                      "security.userns must be an object",
		`{"security":{"userns":{"base":-1}}}`:                            "security.userns.base must be >= 1",
		`{"security":{"userns":{"size":100}}}`:                           "security.userns.size must be >= 1024",
		`{"security":{"userns":{"count":-3}}}`:                           "security.userns.count must be >= 1",
		`{"security":{"userns":{"base":"x"}}}`:                           "security.userns.base must be a number",
		`{"security":{"userns":{"base":4294000000,"count":100}}}`:        "base + size × count must stay below 4294967295",
		`{"security":{"userns":{"base":1e20}}}`:                          "security.userns",
		`{"security":{"userns":{"stateDir":"state"}}}`:                   "security.userns.stateDir must be an absolute path",
		`{"security":{"userns":{"size":4294967295,"count":4294967295}}}`: "must stay below",
	}
	for file, want := range cases {
		_, err := Parse([]byte(file))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", file, err, want)
		}
	}
}

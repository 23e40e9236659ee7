package image

import (
	"slices"
	"strings"
	"testing"
)

func TestBuildHashCoversPins(t *testing.T) {
	node := defaultRecipes["node"]
	ref := buildHash(defaultBase, node)
	if ref != buildHash(defaultBase, defaultRecipes["node"]) {
		t.Fatal("hash is not stable")
	}
	if len(ref) != 64 {
		t.Fatalf("hash %q is not hex sha256", ref)
	}
	withNPM := func(f func(*npmPackage)) recipe {
		r := node
		r.NPM = slices.Clone(node.NPM)
		f(&r.NPM[0].Package)
		return r
	}
	changed := map[string]struct {
		base baseRecipe
		r    recipe
	}{
		"version":   {defaultBase, withNPM(func(p *npmPackage) { p.Version = "22.23.4" })},
		"integrity": {defaultBase, withNPM(func(p *npmPackage) { p.Integrity = "sha512-AAAA" })},
		"name":      {defaultBase, withNPM(func(p *npmPackage) { p.Name = "node-linux-x64-baseline" })},
		"symlink":   {defaultBase, recipe{Runtime: "node", NPM: node.NPM, Symlinks: node.Symlinks[:1]}},
		"apt list":  {defaultBase, recipe{Runtime: "python", Apt: []string{"python3", "python3-pip"}}},
		"base include": {func() baseRecipe {
			b := defaultBase
			b.Include = append(slices.Clone(b.Include), "curl")
			return b
		}(), node},
		"base suite": {func() baseRecipe { b := defaultBase; b.Suite = "trixie"; return b }(), node},
		"env":        {func() baseRecipe { b := defaultBase; b.Env = []string{"PATH=/bin"}; return b }(), node},
	}
	for name, c := range changed {
		if buildHash(c.base, c.r) == ref && name != "apt list" {
			t.Errorf("%s change does not change the hash", name)
		}
	}
	if buildHash(defaultBase, defaultRecipes["python"]) == buildHash(defaultBase, changed["apt list"].r) {
		t.Error("apt list change does not change the hash")
	}
	// Each runtime has its own hash.
	seen := map[string]string{}
	for _, rt := range Runtimes {
		h := buildHash(defaultBase, defaultRecipes[rt])
		if other, dup := seen[h]; dup {
			t.Errorf("%s and %s share a hash", rt, other)
		}
		seen[h] = rt
	}
	b2 := defaultBase
	b2.DpkgOpts = b2.DpkgOpts[:1]
	if baseHash(b2) == baseHash(defaultBase) {
		t.Error("base hash ignores dpkg options")
	}
}

func TestPinnedRecipes(t *testing.T) {
	for _, rt := range Runtimes {
		r, ok := defaultRecipes[rt]
		if !ok || r.Runtime != rt {
			t.Fatalf("no recipe for %s", rt)
		}
		for _, in := range r.NPM {
			if _, _, err := integrityHash(in.Package.Integrity); err != nil || !strings.HasPrefix(in.Package.Integrity, "sha512-") {
				t.Errorf("%s: %s: bad pin %q: %v", rt, in.Package, in.Package.Integrity, err)
			}
		}
	}
	if Name("python") != "isol8:python" {
		t.Fatalf("Name = %q", Name("python"))
	}
}

func TestSelectRuntimes(t *testing.T) {
	for _, tt := range []struct {
		in      []string
		want    []string
		wantErr bool
	}{
		{nil, Runtimes, false},
		{[]string{"bash", "python", "bash"}, []string{"python", "bash"}, false},
		{[]string{"ruby"}, nil, true},
	} {
		got, err := selectRuntimes(tt.in)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("selectRuntimes(%v) = %v, %v", tt.in, got, err)
		}
	}
}

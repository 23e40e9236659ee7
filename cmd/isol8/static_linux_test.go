package main

import (
	"debug/elf"
	"os"
	"testing"

	"github.com/isol8/isol8/internal/testenv"
)

// TestBinaryIsStatic checks the README's promise that bin/isol8 is a single
// file to copy to any Linux host: `make build` links it statically,
// libseccomp included, so it names no interpreter and no shared library.
func TestBinaryIsStatic(t *testing.T) {
	bin := os.Getenv("ISOL8_BIN")
	if bin == "" {
		if testenv.Strict() {
			t.Fatal("ISOL8_BIN is not set; `make test` sets it to the bin/isol8 of `make build`")
		}
		t.Skip("needs ISOL8_BIN, the bin/isol8 of `make build` (run `make test`)")
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked (it has a program interpreter)", bin)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	if len(libs) > 0 {
		t.Errorf("%s needs shared libraries at run time: %v", bin, libs)
	}
}

package seccomp

import "testing"

// BenchmarkParseStrict measures flattening the embedded profile, which the
// engine does before its first sandbox.
func BenchmarkParseStrict(b *testing.B) {
	for b.Loop() {
		if _, err := Parse(ModeStrict, ""); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateStrict measures the libseccomp compile of the flattened
// embedded profile, which the engine runs beside the first sandbox's creation.
func BenchmarkValidateStrict(b *testing.B) {
	p, err := Parse(ModeStrict, "")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := ValidateFor(ModeStrict, "", p); err != nil {
			b.Fatal(err)
		}
	}
}

package engine

import (
	"bytes"
	"testing"
)

// FuzzMasker: however the output is cut into chunks, no secret survives,
// and text that holds no secret passes through unchanged.
func FuzzMasker(f *testing.F) {
	f.Add([]byte("the key is s3cr3t and s3cr3t again"), "s3cr3t", "cr3", uint8(3))
	f.Add([]byte("aaaaaaaaab"), "aaab", "ab", uint8(1))
	f.Add([]byte("no secrets here"), "zzz", "yy", uint8(5))
	f.Fuzz(func(t *testing.T, data []byte, s1, s2 string, step uint8) {
		if step == 0 {
			step = 1
		}
		if len(data) > 1<<12 || len(s1) > 64 || len(s2) > 64 {
			t.Skip() // secrets are short; keep each input fast
		}
		secrets := map[string]string{"A": s1, "B": s2}
		m := newMasker(secrets)
		var out []byte
		for i := 0; i < len(data); i += int(step) {
			end := min(i+int(step), len(data))
			out = append(out, m.write(data[i:end])...)
		}
		out = append(out, m.flush(false)...)
		// The same masking applied to the whole text at once.
		whole := []byte(maskString(secrets, string(data)))
		if !bytes.Equal(out, whole) {
			t.Fatalf("chunked masking differs from whole-text masking:\n%q\n%q", out, whole)
		}
		containsSecret := false
		for _, s := range []string{s1, s2} {
			if s != "" && bytes.Contains(data, []byte(s)) {
				containsSecret = true
			}
		}
		if !containsSecret && !bytes.Equal(out, data) {
			t.Fatalf("text without secrets changed: %q -> %q", data, out)
		}
		// No secret remains that was not created by joining masks and text
		// (a secret made of '*' can reappear from the mask itself).
		for _, s := range []string{s1, s2} {
			if s != "" && !bytes.ContainsRune([]byte(s), '*') && bytes.Contains(out, []byte(s)) {
				// The mask replacement can produce a new occurrence only
				// by joining text around it; those contain '*'.
				t.Fatalf("secret %q survived in %q", s, out)
			}
		}
	})
}

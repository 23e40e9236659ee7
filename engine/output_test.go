package engine

import (
	"strings"
	"testing"
)

func maskAll(secrets map[string]string, chunks ...string) string {
	m := newMasker(secrets)
	var out []byte
	for _, c := range chunks {
		out = append(out, m.write([]byte(c))...)
	}
	return string(append(out, m.flush(false)...))
}

func TestMasker(t *testing.T) {
	sec := map[string]string{"A": "sk-123456"}
	tests := []struct {
		name    string
		secrets map[string]string
		chunks  []string
		want    string
	}{
		{"plain", sec, []string{"my key is sk-123456"}, "my key is ***"},
		{"twice", sec, []string{"sk-123456 sk-123456"}, "*** ***"},
		{"split across chunks", sec, []string{"key sk-12", "3456 end"}, "key *** end"},
		{"split into bytes", sec, strings.Split("xsk-123456y", ""), "x***y"},
		{"prefix only", sec, []string{"sk-12", "3"}, "sk-123"},
		{"two secrets", map[string]string{"A": "alpha", "B": "beta"}, []string{"alpha and beta"}, "*** and ***"},
		{"overlapping secrets", map[string]string{"A": "abc", "B": "abcdef"}, []string{"xabcdefx"}, "x***x"},
		// Found by FuzzMasker: a shorter secret inside a longer one split
		// across chunks was masked before the longer one completed.
		{"inner secret waits for the outer", map[string]string{"A": "s3cr3t", "B": "cr3"}, []string{"x s3c", "r3", "t y"}, "x *** y"},
		{"shorter secret at the same place", map[string]string{"A": "ab", "B": "abcd"}, []string{"ab", "c", "d!"}, "***!"},
		{"shorter secret kept when the longer never comes", map[string]string{"A": "ab", "B": "abcd"}, []string{"ab", "c"}, "***c"},
		{"empty secret ignored", map[string]string{"A": ""}, []string{"text"}, "text"},
		{"no secrets", nil, []string{"a", "b"}, "ab"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := maskAll(tc.secrets, tc.chunks...); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMaskerReleasesEarly(t *testing.T) {
	m := newMasker(map[string]string{"A": "secret"})
	if got := string(m.write([]byte("hello world\n"))); got != "hello world\n" {
		t.Fatalf("held back unrelated output: %q", got)
	}
	if got := string(m.write([]byte("x se"))); got != "x " {
		t.Fatalf("got %q, want the possible secret start held back", got)
	}
	if got := string(m.flush(true)); got != "***" {
		t.Fatalf("cut output must mask a pending secret prefix, got %q", got)
	}
}

func TestUTF8Carry(t *testing.T) {
	var u utf8Carry
	s := "héllo wörld €"
	var out []byte
	for i := 0; i < len(s); i++ {
		chunk := u.write([]byte{s[i]})
		if len(chunk) > 0 && !utf8Valid(chunk) {
			t.Fatalf("chunk %q splits a character", chunk)
		}
		out = append(out, chunk...)
	}
	out = append(out, u.flush()...)
	if string(out) != s {
		t.Fatalf("got %q", out)
	}
}

func utf8Valid(b []byte) bool { return strings.ToValidUTF8(string(b), "\uFFFD") == string(b) }

func TestCollectorTruncation(t *testing.T) {
	c := &collector{m: newMasker(nil)}
	c.write([]byte(strings.Repeat("x", 49) + "é"[:1]))
	got := c.finish(true, 200, 50)
	if !strings.Contains(got, "OUTPUT TRUNCATED (200 bytes, limit: 50)") {
		t.Fatalf("missing marker: %q", got)
	}
	if !utf8Valid([]byte(got)) || !strings.HasPrefix(got, strings.Repeat("x", 49)+"\n") {
		t.Fatalf("bad cut: %q", got)
	}
	c = &collector{m: newMasker(nil)}
	c.write([]byte("1\n\n"))
	if got := c.finish(false, 3, 50); got != "1" {
		t.Fatalf("want right-trimmed %q, got %q", "1", got)
	}
}

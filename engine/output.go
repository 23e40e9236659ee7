package engine

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// masker replaces secret values with "***" in a stream of chunks, also when a
// secret is split across chunk borders: it holds back only the longest tail
// that could still begin a secret, so everything else flows on at once.
type masker struct {
	secrets [][]byte // longest first, so overlapping secrets mask fully
	buf     []byte
}

func newMasker(secrets map[string]string) *masker {
	m := &masker{}
	for _, v := range secrets {
		if v != "" {
			m.secrets = append(m.secrets, []byte(v))
		}
	}
	sort.Slice(m.secrets, func(i, j int) bool { return len(m.secrets[i]) > len(m.secrets[j]) })
	return m
}

var mask = []byte("***")

// write consumes a chunk and returns what can be released now.
func (m *masker) write(p []byte) []byte {
	if len(m.secrets) == 0 {
		return p
	}
	m.buf = append(m.buf, p...)
	var out []byte
	for {
		idx, n := m.earliest(m.buf)
		if idx < 0 {
			break
		}
		// A secret that may still be completing at the end of the buffer
		// and begins at or before this match wins over it once complete
		// (earliest first, then longest), so the match must wait.
		if keep := m.pendingPrefix(m.buf); keep > 0 && len(m.buf)-keep <= idx {
			break
		}
		out = append(out, m.buf[:idx]...)
		out = append(out, mask...)
		m.buf = m.buf[idx+n:]
	}
	keep := m.pendingPrefix(m.buf)
	out = append(out, m.buf[:len(m.buf)-keep]...)
	m.buf = append(m.buf[:0:0], m.buf[len(m.buf)-keep:]...)
	return out
}

// maskAll masks every complete secret in b, for text known to be whole.
func (m *masker) maskAll(b []byte) []byte {
	var out []byte
	for {
		idx, n := m.earliest(b)
		if idx < 0 {
			return append(out, b...)
		}
		out = append(append(out, b[:idx]...), mask...)
		b = b[idx+n:]
	}
}

// flush releases the held-back tail. When the output was cut short the tail
// may be the start of a secret that never finished, so it is masked.
func (m *masker) flush(cut bool) []byte {
	tail := m.buf
	m.buf = nil
	if cut && len(tail) > 0 {
		return append([]byte(nil), mask...)
	}
	// The tail may hold a complete secret that waited for a longer one.
	return m.maskAll(tail)
}

// earliest finds the first occurrence of any secret (the longest at a tie).
func (m *masker) earliest(b []byte) (int, int) {
	best, bestLen := -1, 0
	for _, s := range m.secrets {
		i := bytes.Index(b, s)
		if i >= 0 && (best < 0 || i < best) {
			best, bestLen = i, len(s)
		}
	}
	return best, bestLen
}

// pendingPrefix is the length of the longest suffix of b that is a proper
// prefix of some secret.
func (m *masker) pendingPrefix(b []byte) int {
	longest := 0
	for _, s := range m.secrets {
		max := len(s) - 1
		if max > len(b) {
			max = len(b)
		}
		for k := max; k > longest; k-- {
			if bytes.Equal(b[len(b)-k:], s[:k]) {
				longest = k
				break
			}
		}
	}
	return longest
}

// utf8Carry holds back an incomplete UTF-8 sequence at the end of a chunk so
// that streamed text events never split a character.
type utf8Carry struct{ buf []byte }

func (u *utf8Carry) write(p []byte) []byte {
	b := append(u.buf, p...)
	cut := incompleteTail(b)
	u.buf = append([]byte(nil), b[len(b)-cut:]...)
	return b[:len(b)-cut]
}

func (u *utf8Carry) flush() []byte {
	b := u.buf
	u.buf = nil
	return b
}

// incompleteTail returns how many trailing bytes form the start of a UTF-8
// sequence that is not complete yet (0 to 3).
func incompleteTail(b []byte) int {
	for k := 1; k <= 3 && k <= len(b); k++ {
		c := b[len(b)-k]
		if c < 0x80 {
			return 0 // ASCII: nothing pending
		}
		if utf8.RuneStart(c) {
			need := 0
			switch {
			case c&0xE0 == 0xC0:
				need = 2
			case c&0xF0 == 0xE0:
				need = 3
			case c&0xF8 == 0xF0:
				need = 4
			default:
				return 0 // invalid lead byte: let it through
			}
			if need > k {
				return k
			}
			return 0
		}
	}
	return 0
}

// Markers appended to buffered output.
const timeoutMarker = "\n--- EXECUTION TIMED OUT ---"

func truncationMarker(total, limit int64) string {
	return fmt.Sprintf("\n\n--- OUTPUT TRUNCATED (%d bytes, limit: %d) ---", total, limit)
}

// collector accumulates one stream of a buffered execution.
type collector struct {
	m   *masker
	buf bytes.Buffer
}

func (c *collector) write(p []byte) { c.buf.Write(c.m.write(p)) }

// finish returns the collected text: masked, with the truncation marker when
// the agent dropped output, cut at a valid UTF-8 boundary, right-trimmed.
func (c *collector) finish(truncated bool, total, limit int64) string {
	c.buf.Write(c.m.flush(truncated))
	b := c.buf.Bytes()
	if truncated {
		b = b[:len(b)-incompleteTail(b)]
		return strings.TrimRight(string(b)+truncationMarker(total, limit), " \t\r\n")
	}
	return strings.TrimRight(string(b), " \t\r\n")
}

package auth

import (
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkVerifySQLite measures Verify (a lookup and the lastUsedAt write)
// on the embedded backend, from parallel callers as a server's requests.
func BenchmarkVerifySQLite(b *testing.B) {
	s, err := Open(b.Context(), filepath.Join(b.TempDir(), "auth.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c, err := s.Create(b.Context(), "bench", "", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(8) // 8 × GOMAXPROCS callers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Verify(b.Context(), c.Token); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

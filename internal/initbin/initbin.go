// Package initbin locates the isol8-init binary that the engine bind-mounts
// into every sandbox. `make build` embeds a static isol8-init into isol8;
// Path writes it out once (content-addressed) under /var/lib/isol8/bin. A
// plain `go build` has no embedded copy, so Path then looks beside the
// running executable and on PATH.
package initbin

import (
	"embed"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
)

//go:embed bin
var embedded embed.FS

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Name is the binary's file name.
const Name = "isol8-init"

// ErrNotFound says no isol8-init could be located.
var ErrNotFound = errors.New("isol8-init not found: build isol8 with `make build` (which embeds it), or put isol8-init beside the isol8 binary")

// Path returns a host path of an isol8-init binary, writing the embedded copy
// into dir (default /var/lib/isol8/bin) when there is one.
func Path(dir string) (string, error) {
	if dir == "" {
		dir = "/var/lib/isol8/bin"
	}
	data, err := fs.ReadFile(embedded, "bin/"+Name)
	if err == nil && len(data) > 0 {
		return writeOut(dir, data)
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), Name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	if p, err := exec.LookPath(Name); err == nil {
		return filepath.Abs(p)
	}
	return "", ErrNotFound
}

// writeOut stores data under a name derived from its checksum, so
// concurrent processes and different isol8 versions never overwrite a
// binary in use. CRC-32C (hardware-accelerated) rather than SHA-256: it runs
// on every start, and the directory is root's, so a name only has to tell
// our own builds apart (SHA-256 cost ~3 ms per run here).
func writeOut(dir string, data []byte) (string, error) {
	sum := crc32.Checksum(data, castagnoli)
	p := filepath.Join(dir, fmt.Sprintf("%s-%08x-%d", Name, sum, len(data)))
	if st, err := os.Stat(p); err == nil && st.Size() == int64(len(data)) {
		return p, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("write isol8-init: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".init-*")
	if err != nil {
		return "", fmt.Errorf("write isol8-init: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write isol8-init: %w", err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write isol8-init: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("write isol8-init: %w", err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return "", fmt.Errorf("write isol8-init: %w", err)
	}
	return p, nil
}

package audit

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// rotatingFile is the live log file of a directory. Only the writer
// goroutine uses it.
type rotatingFile struct {
	dir       string
	maxBytes  int64
	retention time.Duration // 0: keep everything
	now       func() time.Time
	log       *slog.Logger

	f         *os.File
	size      int64
	lastPrune time.Time
}

func openRotating(dir string, maxBytes int64, retentionDays int, now func() time.Time, log *slog.Logger) (*rotatingFile, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("audit: create log directory: %w", err)
	}
	r := &rotatingFile{dir: dir, maxBytes: maxBytes, now: now, log: log,
		retention: time.Duration(retentionDays) * 24 * time.Hour}
	r.prune()
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *rotatingFile) path() string { return filepath.Join(r.dir, FileName) }

func (r *rotatingFile) open() error {
	f, err := os.OpenFile(r.path(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("audit: open log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audit: open log: %w", err)
	}
	r.f, r.size = f, st.Size()
	return nil
}

// write appends one line, rotating first when the line would take the file
// past maxBytes (a file always takes at least one line).
func (r *rotatingFile) write(line []byte) error {
	if r.f == nil {
		if err := r.open(); err != nil {
			return err
		}
	}
	if r.size > 0 && r.size+int64(len(line)) > r.maxBytes {
		if err := r.rotate(); err != nil {
			return err
		}
	}
	n, err := r.f.Write(line)
	r.size += int64(n)
	if r.retention > 0 && r.now().Sub(r.lastPrune) > time.Hour {
		r.prune()
	}
	return err
}

// rotate renames the live file to executions-<UTC time>-<n>.log and opens a
// new one.
func (r *rotatingFile) rotate() error {
	if err := r.f.Close(); err != nil {
		r.log.Warn("audit: close rotated log", "error", err)
	}
	r.f = nil
	dst, err := r.rotatedName()
	if err != nil {
		return err
	}
	if err := os.Rename(r.path(), dst); err != nil {
		return fmt.Errorf("audit: rotate log: %w", err)
	}
	r.prune()
	return r.open()
}

// rotatedName returns a free name executions-<UTC time>-<n>.log; names
// sort in the order the files were rotated, also within one clock tick.
func (r *rotatingFile) rotatedName() (string, error) {
	stamp := r.now().UTC().Format("20060102T150405.000000000")
	for n := 0; n < 1000; n++ {
		p := filepath.Join(r.dir, fmt.Sprintf("executions-%s-%03d.log", stamp, n))
		if _, err := os.Lstat(p); os.IsNotExist(err) {
			return p, nil
		}
	}
	return "", fmt.Errorf("audit: rotate log: no free name for %s", stamp)
}

// isLogFile reports whether name is one of the files this package writes
// (the live file, rotated files): retention never touches anything else
// in the directory.
func isLogFile(name string) bool {
	return name == FileName || (strings.HasPrefix(name, "executions-") && (strings.HasSuffix(name, ".log") || strings.HasSuffix(name, ".jsonl")))
}

// prune removes rotated files older than the retention.
func (r *rotatingFile) prune() {
	r.lastPrune = r.now()
	if r.retention <= 0 {
		return
	}
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		r.log.Warn("audit: retention", "error", err)
		return
	}
	cutoff := r.now().Add(-r.retention)
	removed := 0
	for _, e := range entries {
		if !e.Type().IsRegular() || !isLogFile(e.Name()) || e.Name() == FileName {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(r.dir, e.Name())); err == nil {
			removed++
		}
	}
	if removed > 0 {
		r.log.Info(fmt.Sprintf("Audit log cleanup: removed %d old log files", removed))
	}
}

func (r *rotatingFile) close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// LogFiles returns the log files of dir, oldest first: rotated files by
// name (their names sort by time), then the live file.
func LogFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	live := ""
	for _, e := range entries {
		if !e.Type().IsRegular() || !isLogFile(e.Name()) {
			continue
		}
		if e.Name() == FileName {
			live = filepath.Join(dir, e.Name())
			continue
		}
		out = append(out, filepath.Join(dir, e.Name()))
	}
	if live != "" {
		out = append(out, live)
	}
	return out, nil
}

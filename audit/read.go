package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"time"
)

// Filter selects records; zero fields match everything.
type Filter struct {
	Since, Until time.Time
	Type         string
	Runtime      string
	Outcome      string
	Tenant       string
}

// Match reports whether r passes f.
func (f Filter) Match(r *Record) bool {
	if f.Type != "" && r.Type != f.Type {
		return false
	}
	if f.Runtime != "" && r.Runtime != f.Runtime {
		return false
	}
	if f.Outcome != "" && r.Outcome != f.Outcome {
		return false
	}
	if f.Tenant != "" && r.Tenant != f.Tenant {
		return false
	}
	if !f.Since.IsZero() || !f.Until.IsZero() {
		t, err := time.Parse(time.RFC3339Nano, r.Timestamp)
		if err != nil {
			return false
		}
		if !f.Since.IsZero() && t.Before(f.Since) {
			return false
		}
		if !f.Until.IsZero() && t.After(f.Until) {
			return false
		}
	}
	return true
}

// Read calls fn with every record of dir's log files that f matches,
// oldest file first, until fn returns false. Lines that are not records
// are skipped and counted.
func Read(dir string, f Filter, fn func(*Record) bool) (skipped int, err error) {
	files, err := LogFiles(dir)
	if err != nil {
		return 0, err
	}
	for _, path := range files {
		n, more, err := readFile(path, f, fn)
		skipped += n
		if err != nil {
			return skipped, err
		}
		if !more {
			break
		}
	}
	return skipped, nil
}

func readFile(path string, f Filter, fn func(*Record) bool) (skipped int, more bool, err error) {
	fh, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, true, nil // rotated away meanwhile
	}
	if err != nil {
		return 0, false, err
	}
	defer fh.Close()
	br := bufio.NewReaderSize(fh, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			r, ok := parseLine(line)
			switch {
			case !ok:
				skipped++
			case f.Match(r):
				if !fn(r) {
					return skipped, false, nil
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return skipped, true, nil
		}
		if err != nil {
			return skipped, false, err
		}
	}
}

func parseLine(line []byte) (*Record, bool) {
	s := strings.TrimSpace(string(line))
	s = strings.TrimPrefix(s, "AUDIT_LOG: ")
	var r Record
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return nil, false
	}
	if r.Type == "" {
		r.Type = TypeExecution // records of the reference have no type
	}
	return &r, true
}

package userns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// HostFiles are the account databases CheckHost reads; tests point them
// elsewhere.
type HostFiles struct {
	Passwd, Group, Subuid, Subgid string
}

// DefaultHostFiles are the host's own.
var DefaultHostFiles = HostFiles{Passwd: "/etc/passwd", Group: "/etc/group", Subuid: "/etc/subuid", Subgid: "/etc/subgid"}

// CheckHost refuses a range that overlaps a local account or group id or a
// subordinate range delegated to a user: a sandbox would then share that
// identity. Missing files are skipped.
func CheckHost(c Config, files HostFiles) error {
	lo, hi := uint64(c.Base), c.End()
	for _, db := range []struct{ path, what string }{{files.Passwd, "user"}, {files.Group, "group"}} {
		ids, err := readIDs(db.path)
		if err != nil {
			return err
		}
		for name, id := range ids {
			if id >= lo && id < hi {
				return invalid("user namespace range %d-%d contains host %s %s (id %d): choose another security.userns.base", lo, hi-1, db.what, name, id)
			}
		}
	}
	for _, path := range []string{files.Subuid, files.Subgid} {
		ranges, err := readSubIDs(path)
		if err != nil {
			return err
		}
		for _, r := range ranges {
			if r.start < hi && r.start+r.count > lo {
				return invalid("user namespace range %d-%d overlaps %s entry of %s (%d-%d): choose another security.userns.base", lo, hi-1, path, r.owner, r.start, r.start+r.count-1)
			}
		}
	}
	return nil
}

func readLines(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("check user namespace range: %w", err)
	}
	return strings.Split(string(data), "\n"), nil
}

// readIDs returns name → id of a passwd- or group-style file.
func readIDs(path string) (map[string]uint64, error) {
	lines, err := readLines(path)
	if err != nil {
		return nil, err
	}
	ids := map[string]uint64{}
	for _, line := range lines {
		f := strings.Split(line, ":")
		if len(f) < 3 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if id, err := strconv.ParseUint(f[2], 10, 32); err == nil {
			ids[f[0]] = id
		}
	}
	return ids, nil
}

type subRange struct {
	owner        string
	start, count uint64
}

// readSubIDs returns the ranges of a subuid- or subgid-style file
// (owner:start:count).
func readSubIDs(path string) ([]subRange, error) {
	lines, err := readLines(path)
	if err != nil {
		return nil, err
	}
	var out []subRange
	for _, line := range lines {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) != 3 || strings.HasPrefix(f[0], "#") {
			continue
		}
		start, err1 := strconv.ParseUint(f[1], 10, 32)
		count, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 == nil && err2 == nil {
			out = append(out, subRange{owner: f[0], start: start, count: count})
		}
	}
	return out, nil
}

package config

import (
	"fmt"
	"path/filepath"
)

// Defaults of "security.userns", applied by the engine to keys left unset.
const (
	DefaultUserNSBase     = 1_000_000
	DefaultUserNSSize     = 65536
	DefaultUserNSCount    = 1024
	DefaultUserNSStateDir = "/var/lib/isol8/userns"
	minUserNSSize         = 1024
	maxHostID             = 1<<32 - 2 // (uid_t)-1 is not an id
)

// UserNS is the host id range sandboxes' user namespaces map onto
// ("security.userns"): count slots of size ids from base, one slot per live
// sandbox, recorded in lock files under stateDir. Zero values mean the
// defaults above; the key is omitted from the JSON view while unset.
type UserNS struct {
	Base     int64  `json:"base,omitempty"`
	Size     int64  `json:"size,omitempty"`
	Count    int    `json:"count,omitempty"`
	StateDir string `json:"stateDir,omitempty"`
}

// Effective returns u with unset keys replaced by the defaults (u may be
// nil).
func (u *UserNS) Effective() UserNS {
	var e UserNS
	if u != nil {
		e = *u
	}
	if e.Base == 0 {
		e.Base = DefaultUserNSBase
	}
	if e.Size == 0 {
		e.Size = DefaultUserNSSize
	}
	if e.Count == 0 {
		e.Count = DefaultUserNSCount
	}
	if e.StateDir == "" {
		e.StateDir = DefaultUserNSStateDir
	}
	return e
}

// userNS merges the "userns" object of the security section.
func (d *decoder) userNS(m map[string]any, dst **UserNS) error {
	const s = "security.userns"
	v, name, ok := d.lookup(m, "security", "userns")
	if !ok {
		return nil
	}
	mm, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%s must be an object", name)
	}
	var u UserNS
	if *dst != nil {
		u = **dst
	}
	if err := first(
		d.integer(mm, s, "base", &u.Base),
		d.integer(mm, s, "size", &u.Size),
		d.integer(mm, s, "count", &u.Count),
		d.str(mm, s, "stateDir", &u.StateDir),
	); err != nil {
		return err
	}
	*dst = &u
	return nil
}

func validUserNS(u *UserNS) error {
	if u == nil {
		return nil
	}
	e := u.Effective()
	if err := first(
		atLeast("security.userns.base", e.Base, 1),
		atLeast("security.userns.size", e.Size, minUserNSSize),
		atLeast("security.userns.count", int64(e.Count), 1),
	); err != nil {
		return err
	}
	if e.Base > maxHostID || e.Size > maxHostID || int64(e.Count) > maxHostID ||
		e.Base+e.Size*int64(e.Count)-1 > maxHostID {
		return fmt.Errorf("security.userns: base + size × count must stay below %d (got %d + %d × %d)", maxHostID+1, e.Base, e.Size, e.Count)
	}
	if !filepath.IsAbs(e.StateDir) {
		return fmt.Errorf("security.userns.stateDir must be an absolute path (got %q)", e.StateDir)
	}
	return nil
}

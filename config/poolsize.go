package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// PoolSize is the number of clean and dirty sandboxes kept per image. In
// JSON it is either a number n (clean = dirty = n) or {"clean", "dirty"};
// it marshals back in the form it was given.
type PoolSize struct {
	Clean int
	Dirty int

	number bool // given as a single number
}

// PoolSizeOf returns the single-number form n (clean = dirty = n).
func PoolSizeOf(n int) PoolSize { return PoolSize{Clean: n, Dirty: n, number: true} }

// IsNumber reports whether the size was given as a single number.
func (p PoolSize) IsNumber() bool { return p.number && p.Clean == p.Dirty }

// String renders "<n>" for the number form and "<clean>,<dirty>" otherwise.
func (p PoolSize) String() string {
	if p.IsNumber() {
		return strconv.Itoa(p.Clean)
	}
	return fmt.Sprintf("%d,%d", p.Clean, p.Dirty)
}

// MarshalJSON writes n or {"clean":c,"dirty":d}.
func (p PoolSize) MarshalJSON() ([]byte, error) {
	if p.IsNumber() {
		return []byte(strconv.Itoa(p.Clean)), nil
	}
	return fmt.Appendf(nil, `{"clean":%d,"dirty":%d}`, p.Clean, p.Dirty), nil
}

// UnmarshalJSON accepts a number or an object; missing members default to 1.
// Range checks are left to Config.Validate.
func (p *PoolSize) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if bytes.Equal(data, []byte("null")) {
		return nil
	}
	var n int
	if err := json.Unmarshal(data, &n); err == nil {
		*p = PoolSizeOf(n)
		return nil
	}
	var o struct {
		Clean *int `json:"clean"`
		Dirty *int `json:"dirty"`
	}
	if err := json.Unmarshal(data, &o); err != nil {
		return fmt.Errorf("poolSize must be a number or an object {clean, dirty}: %w", err)
	}
	*p = PoolSize{Clean: 1, Dirty: 1}
	if o.Clean != nil {
		p.Clean = *o.Clean
	}
	if o.Dirty != nil {
		p.Dirty = *o.Dirty
	}
	return nil
}

package api

import (
	"encoding/json"
	"fmt"
)

// UnmarshalJSON accepts both forms clients send: {"clean":n,"dirty":m} and
// a bare number n, meaning n clean and n dirty.
func (p *PoolSize) UnmarshalJSON(data []byte) error {
	var n json.Number
	if err := json.Unmarshal(data, &n); err == nil {
		v, err := n.Int64()
		if err != nil || v < 0 || v > 1<<20 {
			return fmt.Errorf("poolSize must be a non-negative integer or {clean, dirty}")
		}
		*p = PoolSize{Clean: int(v), Dirty: int(v)}
		return nil
	}
	type plain PoolSize
	var q plain
	if err := json.Unmarshal(data, &q); err != nil {
		return err
	}
	*p = PoolSize(q)
	return nil
}

package config

import (
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/isol8/isol8/api"
)

var memoryLimitRE = regexp.MustCompile(`(?i)^(\d+(?:\.\d+)?)\s*([kmgt]?)b?$`)

// ParseMemoryLimit converts a size such as "512m", "1g", "256k", "1024" or
// "512mb" to bytes: units are powers of 1024, matching is
// case-insensitive and the result is floored. Anything else fails with the
// invalid-argument error `Invalid memory limit format: "<x>". Use e.g.
// "512m", "1g".`; a size beyond int64 fails with `Memory limit too large`.
func ParseMemoryLimit(s string) (int64, error) {
	m := memoryLimitRE.FindStringSubmatch(s)
	if m == nil {
		return 0, api.InvalidArgumentf("Invalid memory limit format: %q. Use e.g. \"512m\", \"1g\".", s)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil || math.IsInf(v, 0) {
		return 0, api.InvalidArgumentf("Memory limit too large: %q", s)
	}
	shift := 0
	if m[2] != "" {
		shift = strings.Index("kmgt", strings.ToLower(m[2])) + 1
	}
	v = math.Floor(v * math.Pow(1024, float64(shift)))
	if v >= math.MaxInt64 {
		return 0, api.InvalidArgumentf("Memory limit too large: %q", s)
	}
	return int64(v), nil
}

package api

// RemoteCodePolicy is the remote-code policy a client may send with its
// options ("remoteCode"). A server never lets it loosen its own policy:
// it can only narrow it (see package remotecode). Absent fields keep the
// server's values.
type RemoteCodePolicy struct {
	Enabled        *bool    `json:"enabled,omitempty"`
	AllowedSchemes []string `json:"allowedSchemes,omitempty"`
	AllowedHosts   []string `json:"allowedHosts,omitempty"`
	BlockedHosts   []string `json:"blockedHosts,omitempty"`
	MaxCodeSize    int64    `json:"maxCodeSize,omitempty"`
	FetchTimeoutMs int64    `json:"fetchTimeoutMs,omitempty"`
	RequireHash    bool     `json:"requireHash,omitempty"`
	// EnableCache and CacheTTL are accepted for compatibility and unused.
	EnableCache *bool `json:"enableCache,omitempty"`
	CacheTTL    int64 `json:"cacheTtl,omitempty"`
}

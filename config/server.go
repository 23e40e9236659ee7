package config

// Server holds the REST server's own settings ("server" section): what
// clients may override and how much work it accepts.
type Server struct {
	// AllowClientOverrides lets a request's "options" replace the
	// execution defaults (parity with the reference). When false a client
	// may only tighten them: a shorter timeout, less memory or CPU, fewer
	// processes, a smaller output cap, network "none", seccomp "strict".
	AllowClientOverrides bool `json:"allowClientOverrides"`
	// MaxQueue is how many executions may wait for a slot of the global
	// maxConcurrent limit; past it requests get 429 with Retry-After.
	MaxQueue int `json:"maxQueue"`
	// QueueTimeoutMs is how long a request waits for a slot before 408.
	QueueTimeoutMs int64 `json:"queueTimeoutMs"`
	// MaxBodyBytes bounds a request body (413 past it).
	MaxBodyBytes int64 `json:"maxBodyBytes"`
	// MaxSessions bounds the live persistent sessions (429 past it).
	MaxSessions int `json:"maxSessions"`
	// Prewarm lists runtimes whose warm pool (for the default options) is
	// filled at startup, so the first requests are warm too.
	Prewarm []string `json:"prewarm"`
}

// DefaultServer returns the built-in "server" section.
func DefaultServer() Server {
	return Server{AllowClientOverrides: true, MaxQueue: 100, QueueTimeoutMs: 60000, MaxBodyBytes: 32 << 20, MaxSessions: 1000,
		Prewarm: []string{}}
}

func (c *Config) mergeServer(d *decoder, m map[string]any) error {
	const s = "server"
	return first(
		d.boolean(m, s, "allowClientOverrides", &c.Server.AllowClientOverrides),
		d.integer(m, s, "maxQueue", &c.Server.MaxQueue),
		d.integer(m, s, "queueTimeoutMs", &c.Server.QueueTimeoutMs),
		d.integer(m, s, "maxBodyBytes", &c.Server.MaxBodyBytes),
		d.integer(m, s, "maxSessions", &c.Server.MaxSessions),
		d.strings(m, s, "prewarm", &c.Server.Prewarm),
	)
}

func (c *Config) validateServer() error {
	return first(
		atLeast("server.maxQueue", int64(c.Server.MaxQueue), 0),
		duration("server.queueTimeoutMs", c.Server.QueueTimeoutMs, 1),
		atLeast("server.maxBodyBytes", c.Server.MaxBodyBytes, 1024),
		atLeast("server.maxSessions", int64(c.Server.MaxSessions), 1),
	)
}

// Package config owns the isol8 configuration file: where it is found, its
// built-in defaults, how a file is merged over them, and validation of the
// result (docs/config.md). It reads at most one file and does nothing else: it
// starts no process, opens no connection, reads no environment variable and
// imports no other isol8 package than api (error classes), so the CLI, the
// server and tests share it.
package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/isol8/isol8/api"
)

// File names searched by Load, in order.
const (
	// CwdFile is looked up in the working directory.
	CwdFile = "isol8.config.json"
	// HomeFile is looked up below the user's home directory.
	HomeFile = ".isol8/config.json"
)

// SourceDefault is what Source reports for a key the file did not set.
const SourceDefault = "default"

// maxFileSize bounds how much of a config file is read.
const maxFileSize = 16 << 20

// Config is the merged configuration: every documented key under its
// JSON name, plus isol8's own "containerd" section. Values are always
// defined after Defaults or Load; optional strings are empty when unset.
type Config struct {
	// Schema is the optional "$schema" key for editors. It is never shown by
	// JSON (the reference drops it).
	Schema         string          `json:"$schema,omitempty"`
	MaxConcurrent  int             `json:"maxConcurrent"`
	Defaults       ExecDefaults    `json:"defaults"`
	Network        Network         `json:"network"`
	Cleanup        Cleanup         `json:"cleanup"`
	PoolStrategy   string          `json:"poolStrategy"`
	PoolSize       PoolSize        `json:"poolSize"`
	Security       Security        `json:"security"`
	RemoteCode     RemoteCode      `json:"remoteCode"`
	Audit          Audit           `json:"audit"`
	Auth           Auth            `json:"auth"`
	Debug          bool            `json:"debug"`
	PrebuiltImages []PrebuiltImage `json:"prebuiltImages"`
	Containerd     Containerd      `json:"containerd"`

	// Bounds on what one request may ask, whatever its client. Zero (unset)
	// means the engine's defaults: 1 hour, 32 paths, 64 MiB.
	MaxTimeoutMs        int64 `json:"maxTimeoutMs,omitempty"`
	MaxOutputPaths      int   `json:"maxOutputPaths,omitempty"`
	MaxOutputFilesBytes int64 `json:"maxOutputFilesBytes,omitempty"`

	path string          // absolute path of the loaded file; "" for defaults
	set  map[string]bool // dotted keys the file set
}

// ExecDefaults are the default execution options ("defaults" section).
type ExecDefaults struct {
	TimeoutMs      int64   `json:"timeoutMs"`
	MemoryLimit    string  `json:"memoryLimit"`
	CPULimit       float64 `json:"cpuLimit"`
	Network        string  `json:"network"`
	SandboxSize    string  `json:"sandboxSize"`
	TmpSize        string  `json:"tmpSize"`
	ReadonlyRootFs bool    `json:"readonlyRootFs"`
}

// Network holds the filtered-mode patterns ("network" section).
type Network struct {
	Whitelist []string `json:"whitelist"`
	Blacklist []string `json:"blacklist"`
	// AllowPrivateDestinations lets the filtered network's proxy reach
	// loopback, private and link-local addresses (off: the SSRF guard
	// refuses them). It weakens the sandbox, so only a trusted file may set
	// it.
	AllowPrivateDestinations bool `json:"allowPrivateDestinations,omitempty"`
}

// Cleanup controls server session pruning ("cleanup" section).
type Cleanup struct {
	AutoPrune         bool  `json:"autoPrune"`
	MaxContainerAgeMs int64 `json:"maxContainerAgeMs"`
}

// Security selects the seccomp profile ("security" section).
type Security struct {
	Seccomp           string `json:"seccomp"`
	CustomProfilePath string `json:"customProfilePath,omitempty"`
	// UserNS is the host id range of sandboxes' user namespaces; nil means
	// the defaults.
	UserNS *UserNS `json:"userns,omitempty"`
}

// RemoteCode is the remote code URL policy ("remoteCode" section, §8).
type RemoteCode struct {
	Enabled        bool     `json:"enabled"`
	AllowedSchemes []string `json:"allowedSchemes"`
	AllowedHosts   []string `json:"allowedHosts"`
	BlockedHosts   []string `json:"blockedHosts"`
	MaxCodeSize    int64    `json:"maxCodeSize"`
	FetchTimeoutMs int64    `json:"fetchTimeoutMs"`
	RequireHash    bool     `json:"requireHash"`
	EnableCache    bool     `json:"enableCache"`
	CacheTTL       int64    `json:"cacheTtl"`
}

// Audit configures the audit log ("audit" section, §7.1).
type Audit struct {
	Enabled        bool   `json:"enabled"`
	Destination    string `json:"destination"`
	LogDir         string `json:"logDir,omitempty"`
	PostLogScript  string `json:"postLogScript,omitempty"`
	TrackResources bool   `json:"trackResources"`
	RetentionDays  int    `json:"retentionDays"`
	IncludeCode    bool   `json:"includeCode"`
	IncludeOutput  bool   `json:"includeOutput"`
}

// Auth configures DB-backed API keys ("auth" section, §5.9).
type Auth struct {
	Enabled bool `json:"enabled"`
	// ConnectionString is empty when unset; the server then uses
	// ~/.isol8/auth.db.
	ConnectionString  string `json:"connectionString,omitempty"`
	DefaultTTLMs      int64  `json:"defaultTtlMs"`
	CleanupIntervalMs int64  `json:"cleanupIntervalMs"`
}

// PrebuiltImage is one entry of "prebuiltImages" (§9.3).
type PrebuiltImage struct {
	Tag             string   `json:"tag"`
	Runtime         string   `json:"runtime"`
	InstallPackages []string `json:"installPackages"`
	SetupScript     string   `json:"setupScript,omitempty"`
}

// Containerd locates the container backend (isol8's own section).
type Containerd struct {
	// Address of containerd's socket; empty means the engine's default
	// (CONTAINERD_ADDRESS, then /run/containerd/containerd.sock).
	Address string `json:"address,omitempty"`
	// Runtime is the OCI runtime binary (default "runc").
	Runtime string `json:"runtime"`
}

// DefaultBlockedHosts returns the config default for remoteCode.blockedHosts
// (private, loopback, link-local and metadata hosts), in order. Each call returns a fresh slice.
func DefaultBlockedHosts() []string {
	return []string{
		`^localhost$`,
		`^127(?:\.[0-9]{1,3}){3}$`,
		`^\[::1\]$`,
		`^::1$`,
		`^10(?:\.[0-9]{1,3}){3}$`,
		`^172\.(?:1[6-9]|2[0-9]|3[0-1])(?:\.[0-9]{1,3}){2}$`,
		`^192\.168(?:\.[0-9]{1,3}){2}$`,
		`^169\.254(?:\.[0-9]{1,3}){2}$`,
		`^metadata\.google\.internal$`,
		`^169\.254\.169\.254$`,
	}
}

// Defaults returns the built-in configuration (docs/config.md). Each call
// returns a fresh value the caller may modify.
func Defaults() *Config {
	return &Config{
		MaxConcurrent: 10,
		Defaults: ExecDefaults{
			TimeoutMs:      30000,
			MemoryLimit:    "512m",
			CPULimit:       1,
			Network:        "none",
			SandboxSize:    "512m",
			TmpSize:        "256m",
			ReadonlyRootFs: true,
		},
		Network:      Network{Whitelist: []string{}, Blacklist: []string{}},
		Cleanup:      Cleanup{AutoPrune: true, MaxContainerAgeMs: 3600000},
		PoolStrategy: "fast",
		PoolSize:     PoolSize{Clean: 1, Dirty: 1},
		Security:     Security{Seccomp: "strict"},
		RemoteCode: RemoteCode{
			AllowedSchemes: []string{"https"},
			AllowedHosts:   []string{},
			BlockedHosts:   DefaultBlockedHosts(),
			MaxCodeSize:    10 << 20,
			FetchTimeoutMs: 30000,
			EnableCache:    true,
			CacheTTL:       3600,
		},
		Audit: Audit{
			Destination:    "filesystem",
			TrackResources: true,
			RetentionDays:  90,
		},
		Auth: Auth{
			DefaultTTLMs:      86400000,
			CleanupIntervalMs: 3600000,
		},
		PrebuiltImages: []PrebuiltImage{},
		Containerd:     Containerd{Runtime: "runc"},
		set:            map[string]bool{},
	}
}

// Candidates returns the paths Load tries, in order: <cwd>/isol8.config.json,
// then <home>/.isol8/config.json (omitted when home is empty). cwd "" means
// the process's working directory.
func Candidates(cwd, home string) ([]string, error) {
	abs, err := filepath.Abs(cwd)
	if err != nil {
		return nil, fmt.Errorf("resolve config directory %q: %w", cwd, err)
	}
	paths := []string{filepath.Join(abs, CwdFile)}
	if home != "" {
		h, err := filepath.Abs(home)
		if err != nil {
			return nil, fmt.Errorf("resolve home directory %q: %w", home, err)
		}
		paths = append(paths, filepath.Join(h, filepath.FromSlash(HomeFile)))
	}
	return paths, nil
}

// Load finds the config file (the first existing of
// <cwd>/isol8.config.json and <home>/.isol8/config.json; files are never
// merged with each other), merges it over Defaults (docs/config.md) and
// validates the result. Without a file it returns Defaults. A file that
// cannot be read, is not valid JSON or fails validation yields an
// invalid-argument error "Invalid config file <path>: <reason>". A found
// file that sets a sandbox-weakening key (see Weakening) without being
// trusted for it yields an invalid-argument error naming the file and the
// key; uid is the invoking user.
func Load(cwd, home string, uid int) (*Config, error) {
	paths, err := Candidates(cwd, home)
	if err != nil {
		return nil, err
	}
	for i, p := range paths {
		if _, err := os.Stat(p); err != nil {
			continue // like existsSync: anything unreadable counts as absent
		}
		origin := OriginWorkdir
		if i > 0 {
			origin = OriginHome
		}
		return load(p, origin, uid)
	}
	return Defaults(), nil
}

// LoadFile reads one config file the user named explicitly (`--config`),
// merges it over Defaults and validates it. Such a file is trusted with
// every key.
func LoadFile(path string) (*Config, error) {
	return load(path, OriginExplicit, 0)
}

func load(path string, origin Origin, uid int) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("resolve config file %q: %w", path, err)
	}
	data, st, err := readFile(abs)
	if err != nil {
		return nil, invalidFile(abs, err.Error())
	}
	c, err := Parse(data)
	if err != nil {
		return nil, invalidFile(abs, err.Error())
	}
	if err := checkTrust(c, abs, st, origin, uid); err != nil {
		return nil, err
	}
	c.path = abs
	return c, nil
}

// Parse merges the JSON document data over Defaults and validates the
// result. Errors are invalid-argument errors carrying only the reason.
func Parse(data []byte) (*Config, error) {
	c := Defaults()
	if err := c.merge(data); err != nil {
		return nil, api.InvalidArgument(err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// readFile reads a config file and returns the status of the file it
// opened, so that trust is judged on the very file that was read.
func readFile(path string) ([]byte, fs.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, errors.Unwrap(err) // drop the path: the caller prints it
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if st.IsDir() {
		return nil, nil, errors.New("is a directory")
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, nil, pe.Err
		}
		return nil, nil, err
	}
	if len(data) > maxFileSize {
		return nil, nil, fmt.Errorf("file is larger than %d bytes", maxFileSize)
	}
	return data, st, nil
}

func invalidFile(path, reason string) error {
	return api.InvalidArgumentf("Invalid config file %s: %s", path, reason)
}

// Path returns the absolute path of the loaded file, or "" when the
// configuration is the built-in defaults.
func (c *Config) Path() string { return c.path }

// Source reports where the effective value of a dotted key (for example
// "defaults.timeoutMs", "poolSize", "containerd.runtime") came from: the
// loaded file's path when the file set it, otherwise "default". A section
// name ("defaults") reports the file when the file set any key inside it.
func (c *Config) Source(key string) string {
	if c.path == "" {
		return SourceDefault
	}
	if c.set[key] {
		return c.path
	}
	prefix := key + "."
	for k := range c.set {
		if strings.HasPrefix(k, prefix) {
			return c.path
		}
	}
	return SourceDefault
}

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// credentialsFile is where `isol8 login` stores a token, below home.
const credentialsFile = ".isol8/credentials.json"

// credentialsDisplay is how messages name the credentials file.
const credentialsDisplay = "~/.isol8/credentials.json"

// credentials is the stored login.
type credentials struct {
	Host      string          `json:"host"`
	Token     string          `json:"token"`
	ExpiresAt json.RawMessage `json:"expiresAt"`
	KeyID     string          `json:"keyId"`
}

func (a *app) credentialsPath() string {
	if a.home == "" {
		return ""
	}
	return filepath.Join(a.home, filepath.FromSlash(credentialsFile))
}

// expires parses expiresAt: an ISO-8601 string or epoch milliseconds. ok is
// false when it is missing or unreadable (treated as expired).
func (c *credentials) expires() (time.Time, bool) {
	raw := strings.TrimSpace(string(c.ExpiresAt))
	if raw == "" || raw == "null" {
		return time.Time{}, false
	}
	var s string
	if err := json.Unmarshal(c.ExpiresAt, &s); err == nil {
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000Z07:00"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t, true
			}
		}
		return time.Time{}, false
	}
	if ms, err := strconv.ParseFloat(raw, 64); err == nil {
		return time.UnixMilli(int64(ms)), true
	}
	return time.Time{}, false
}

// resolveAPIKey picks the API key for --host: --key,
// then ISOL8_API_KEY, then stored credentials for the same host (modulo one
// trailing "/") that have not expired.
func (a *app) resolveAPIKey(host, key string) (string, error) {
	if key != "" {
		return key, nil
	}
	if k := a.env["ISOL8_API_KEY"]; k != "" {
		return k, nil
	}
	if p := a.credentialsPath(); p != "" {
		if data, err := os.ReadFile(p); err == nil {
			var c credentials
			if json.Unmarshal(data, &c) == nil && c.Token != "" &&
				strings.TrimSuffix(c.Host, "/") == strings.TrimSuffix(host, "/") {
				if exp, ok := c.expires(); ok && exp.After(a.now()) {
					return c.Token, nil
				}
				fmt.Fprintln(a.stderr, "[WARN] Stored credentials have expired. Run `isol8 login` to re-authenticate.")
			}
		}
	}
	return "", errf("API key required. Use --key, ISOL8_API_KEY env var, or `isol8 login`.")
}

func (a *app) logoutCommand(*globals) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Remove stored credentials (~/.isol8/credentials.json)",
		Long: "Remove the credentials stored by `isol8 login` (~/.isol8/credentials.json).\n" +
			"The token is not revoked on the server.",
		Args: maxArgs(0),
		RunE: func(*cobra.Command, []string) error {
			p := a.credentialsPath()
			if p == "" {
				return errf("Cannot locate the home directory (HOME is not set)")
			}
			err := os.Remove(p)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				fmt.Fprintln(a.stdout, "[INFO] No stored credentials found.")
			case err != nil:
				return errf("Failed to remove %s: %s", credentialsDisplay, pathErrReason(err))
			default:
				fmt.Fprintf(a.stdout, "[OK] Credentials removed from %s\n", credentialsDisplay)
			}
			return nil
		},
	}
}

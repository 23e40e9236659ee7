package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// loginTimeout bounds the whole login request.
const loginTimeout = 30 * time.Second

// maxLoginResponse bounds what is read of the server's answer.
const maxLoginResponse = 1 << 20

// loginFlags holds `isol8 login`'s flags.
type loginFlags struct {
	host, key, name, ttl string
}

func (a *app) loginCommand(*globals) *cobra.Command {
	f := &loginFlags{}
	c := &cobra.Command{
		Use:   "login",
		Short: "Get an API token from a server and store it",
		Long: "Exchange the master key for a DB-backed API token on an isol8 server (POST /auth/login)\n" +
			"and store it in ~/.isol8/credentials.json (mode 0600) for later --host runs.\n" +
			"The master key may also come from $ISOL8_API_KEY instead of --key.",
		Args: maxArgs(0),
		RunE: func(c *cobra.Command, _ []string) error { return a.login(c, f) },
	}
	fs := c.Flags()
	strFlag(fs, &f.host, "host", "", "url", "server URL (required)")
	strFlag(fs, &f.key, "key", "", "master", "master API key (required; default: $ISOL8_API_KEY)")
	strFlag(fs, &f.name, "name", "", "n", "name of the key (default: cli-login-<time>)")
	strFlag(fs, &f.ttl, "ttl", "", "ms", "lifetime of the token in milliseconds (default: the server's)")
	return c
}

// loginResponse is the server's answer to POST /auth/login.
type loginResponse struct {
	Token     string          `json:"token"`
	ExpiresAt json.RawMessage `json:"expiresAt"`
	KeyID     string          `json:"keyId"`
}

func (a *app) login(c *cobra.Command, f *loginFlags) error {
	if !c.Flags().Changed("host") {
		return usageErrorf("required option '%s' not specified", flagSpec(c.Flags().Lookup("host")))
	}
	key := f.key
	if !c.Flags().Changed("key") {
		key = a.env["ISOL8_API_KEY"]
	}
	if key == "" {
		return usageErrorf("required option '%s' not specified", flagSpec(c.Flags().Lookup("key")))
	}
	body := map[string]any{"name": f.name}
	if f.name == "" {
		body["name"] = "cli-login-" + a.now().UTC().Format(isoMillis)
	}
	if c.Flags().Changed("ttl") {
		ms, err := strconv.ParseInt(strings.TrimSpace(f.ttl), 10, 64)
		if err != nil || ms <= 0 {
			return errf("Invalid --ttl: %s. Expected a positive number of milliseconds.", f.ttl)
		}
		body["ttlMs"] = ms
	}
	credPath := a.credentialsPath()
	if credPath == "" {
		return errf("Cannot locate the home directory (HOME is not set)")
	}
	host := strings.TrimSuffix(f.host, "/")
	ctx, cancel := context.WithTimeout(c.Context(), loginTimeout)
	defer cancel()
	resp, err := postLogin(ctx, host, key, body)
	var rej *loginRejected
	switch {
	case errors.As(err, &rej):
		msg := "✖ Authentication failed: " + rej.msg
		if rej.status == http.StatusBadRequest {
			msg += "\n[WARN] DB-backed auth may not be enabled on the server." +
				"\n[WARN] Start the server with --auth-db <path> to enable it."
		}
		return &cliError{code: 1, msg: msg}
	case err != nil:
		return &cliError{code: 1, msg: "✖ Login failed: " + err.Error()}
	}
	if err := a.storeCredentials(credPath, credentials{
		Host: host, Token: resp.Token, ExpiresAt: resp.ExpiresAt, KeyID: resp.KeyID,
	}); err != nil {
		return &cliError{code: 1, msg: "✖ Login failed: " + err.Error()}
	}
	fmt.Fprintln(a.stderr, "✔ Authenticated successfully")
	fmt.Fprintf(a.stdout, "  Host:    %s\n  Expires: %s\n  Stored:  %s\n", host, displayExpiry(resp.ExpiresAt), credentialsDisplay)
	return nil
}

// isoMillis is JavaScript's Date.toISOString format.
const isoMillis = "2006-01-02T15:04:05.000Z"

// loginRejected is a non-2xx answer: the server's error text, or the
// status text when the body has none.
type loginRejected struct {
	status int
	msg    string
}

func (e *loginRejected) Error() string { return e.msg }

// postLogin asks host for a token with the master key.
func postLogin(ctx context.Context, host, key string, body map[string]any) (*loginResponse, error) {
	u, err := url.Parse(host)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid --host %q: expected an http:// or https:// URL", host)
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, host+"/auth/login", bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, transportError(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxLoginResponse))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return nil, rejected(res, data)
	}
	var lr loginResponse
	if err := json.Unmarshal(data, &lr); err != nil {
		return nil, fmt.Errorf("invalid response from server: %w", err)
	}
	if lr.Token == "" {
		return nil, fmt.Errorf("invalid response from server: no token")
	}
	return &lr, nil
}

// transportError drops the *url.Error wrapping, which repeats the method
// and URL in front of the cause.
func transportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func rejected(res *http.Response, data []byte) error {
	var body struct {
		Error string `json:"error"`
	}
	msg := ""
	if json.Unmarshal(data, &body) == nil {
		msg = body.Error
	}
	if msg == "" {
		msg = strings.TrimSpace(strings.TrimPrefix(res.Status, strconv.Itoa(res.StatusCode)))
	}
	if msg == "" {
		msg = http.StatusText(res.StatusCode)
	}
	return &loginRejected{status: res.StatusCode, msg: msg}
}

// storeCredentials writes the credentials file atomically (a private
// temporary file renamed over it), so that a reader never sees half a file
// and the token is never readable by others, even for a moment.
func (a *app) storeCredentials(path string, c credentials) (retErr error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s: %s", filepath.Dir(credentialsDisplay), pathErrReason(err))
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".credentials-*.json") // mode 0600
	if err != nil {
		return fmt.Errorf("write %s: %s", credentialsDisplay, pathErrReason(err))
	}
	defer func() {
		if retErr != nil {
			os.Remove(tmp.Name())
		}
	}()
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %s", credentialsDisplay, pathErrReason(err))
	}
	return nil
}

// displayExpiry shows the token's expiry in local time, or as the server
// sent it when it cannot be read.
func displayExpiry(raw json.RawMessage) string {
	c := credentials{ExpiresAt: raw}
	if t, ok := c.expires(); ok {
		return t.Local().Format("2006-01-02 15:04:05 MST")
	}
	return strings.Trim(string(raw), `"`)
}

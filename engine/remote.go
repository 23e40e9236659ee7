package engine

import (
	"context"
	"net/url"
	"strings"

	"github.com/isol8/isol8/audit"
	"github.com/isol8/isol8/remotecode"
)

// resolveRemote fetches a codeUrl request's code on the host, under the
// engine's remote-code policy, and returns the request with the fetched text
// as its code. Nothing runs unless every check passed, the hash included.
// A request with no codeUrl, or with another source beside it (which plan
// refuses), is returned unchanged.
func (e *Engine) resolveRemote(ctx context.Context, req Request) (Request, *audit.Source, error) {
	if strings.TrimSpace(req.CodeURL) == "" || strings.TrimSpace(req.Code) != "" || strings.TrimSpace(req.Cmd) != "" {
		return req, nil, nil
	}
	src := &audit.Source{Kind: "url", URL: redactURL(req.CodeURL), ExpectedHash: req.CodeHash}
	policy, err := e.remotePolicy()
	if err != nil {
		return req, src, err
	}
	f := remotecode.Fetcher{AllowPrivateDestinations: e.opts.AllowPrivateDestinations}
	code, err := f.Fetch(ctx, policy, remotecode.Source{URL: req.CodeURL, Hash: req.CodeHash, AllowInsecure: req.AllowInsecureCodeURL})
	if err != nil {
		return req, src, err
	}
	if e.debugOn() {
		e.log.Debug("remote code fetched", "url", redactURL(code.URL), "final_url", redactURL(code.FinalURL), "sha256", code.SHA256, "bytes", len(code.Text))
	}
	src.FinalURL = redactURL(code.FinalURL)
	req.Code, req.CodeURL = code.Text, ""
	return req, src, nil
}

// remotePolicy is the operator's policy narrowed by the client's options.
func (e *Engine) remotePolicy() (remotecode.Policy, error) {
	operator := remotecode.Policy{}
	if e.opts.RemoteCode != nil {
		operator = *e.opts.RemoteCode
	}
	return remotecode.Tighten(operator, e.opts.RemoteCodeRequest)
}

// redactURL hides a password in a URL's user info before it is logged or
// recorded.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Redacted()
}

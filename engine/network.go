package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/audit"
	"github.com/isol8/isol8/driver"
	"github.com/isol8/isol8/netns"
	"github.com/isol8/isol8/oci"
	"github.com/isol8/isol8/proxy"
)

// The filtered network: every filtered sandbox has a fresh network
// namespace with only lo, made by the driver with the sandbox (so the warm
// pool prepares namespaces too). Between create and start the engine opens
// the proxy's listener on 127.0.0.1:8118 inside that namespace and serves
// it from its own process; upstream connections leave from the host's
// namespace through the SSRF guard. The sandbox has no route and no
// resolver: the proxy is the only way out. A pooled sandbox's proxy refuses
// everything between executions; each execution attaches its own policy.

// FilteredNetwork returns options for a sandbox whose only way out is the
// proxy with these allow/deny patterns (the seam for installs without
// --net: the registry hosts become the whitelist). A registry on a private
// address also needs its host name in o.TrustedNetworkHosts.
func FilteredNetwork(o Options, whitelist, blacklist []string) Options {
	o.Network = NetworkFiltered
	o.NetworkFilter = &NetworkFilter{
		Whitelist: append([]string{}, whitelist...),
		Blacklist: append([]string{}, blacklist...),
	}
	return o
}

// compileFilter checks a view's network filter (client input: the
// patterns' count, length and syntax).
func compileFilter(o Options) (*proxy.Rules, error) {
	if o.NetworkFilter == nil {
		return nil, nil
	}
	return proxy.Compile(o.NetworkFilter.Whitelist, o.NetworkFilter.Blacklist)
}

// specNetwork is the spec's network mode for a shape: a filtered sandbox
// starts as an empty namespace (the driver makes it fresh and reports it).
func specNetwork(mode string) string {
	if mode == NetworkFiltered {
		return oci.NetworkNone
	}
	return mode
}

// attachment asks the driver for a namespace the engine can enter.
func attachment(mode string) driver.NetworkAttachment {
	if mode == NetworkFiltered {
		return driver.FreshNetwork()
	}
	return driver.NetworkAttachment{}
}

// proxyConfig is the host's (operator's) part of every proxy.
func (h *Host) proxyConfig() proxy.Config {
	c := proxy.Config{Resolver: h.opts.Resolver, Logger: h.log}
	c.Guard.AllowPrivateDestinations = h.opts.AllowPrivateDestinations
	return c
}

// serveProxy opens the proxy's listener inside a created (not yet
// started) filtered sandbox's namespace and serves it.
func (h *Host) serveProxy(ctx context.Context, sb *sandbox) error {
	if sb.netns == "" {
		return fmt.Errorf("filtered network: the driver reported no network namespace for %s", sb.id)
	}
	ln, err := netns.Listen(ctx, sb.netns, proxy.Addr)
	if err != nil {
		return fmt.Errorf("filtered network: %w", err)
	}
	sb.proxy = proxy.New(ln, h.proxyConfig())
	return nil
}

// attachPolicy gives the sandbox's proxy this view's policy for the next
// execution(s), p's (the first, for a persistent sandbox).
func (e *Engine) attachPolicy(ctx context.Context, sb *sandbox, p *plan) {
	if sb.proxy == nil {
		return
	}
	trusted := e.opts.TrustedNetworkHosts
	if len(p.install) > 0 {
		// The registries come from the operator's configuration, never
		// from a client, so a private mirror passes the SSRF guard; the
		// allow and deny patterns still decide.
		trusted = append(slices.Clone(trusted), e.registries().Hosts(p.rt.Name)...)
	}
	sb.proxy.Attach(proxy.Policy{Rules: e.rules, Log: e.opts.LogNetwork, OnEvent: e.eventHook(ctx),
		TrustedHosts: trusted})
}

// eventHook is securityHook plus, when the view logs its network and has
// an audit log, one audit record per blocked request, attributed to the
// caller in ctx (the execution's).
func (e *Engine) eventHook(ctx context.Context) func(api.SecurityEvent) {
	hook := e.securityHook()
	if e.opts.Audit == nil || !e.opts.LogNetwork {
		return hook
	}
	ctx = context.WithoutCancel(ctx)
	return func(ev api.SecurityEvent) {
		if ev.Type == "network_blocked" {
			e.opts.Audit.NetworkBlocked(ctx, "", audit.Blocked{
				Method: ev.Details["method"], Host: ev.Details["host"], Reason: ev.Details["reason"]})
		}
		if hook != nil {
			hook(ev)
		}
	}
}

// securityHook calls the view's and the host's hooks (nil when neither is
// set).
func (e *Engine) securityHook() func(api.SecurityEvent) {
	view, host := e.opts.OnSecurityEvent, e.host.opts.OnSecurityEvent
	switch {
	case view == nil:
		return host
	case host == nil:
		return view
	}
	return func(ev api.SecurityEvent) { view(ev); host(ev) }
}

// detachPolicy ends an execution's use of the proxy: its connections and
// tunnels are closed and what it did goes into res.
func (e *Engine) detachPolicy(sb *sandbox, res *Result) {
	if sb.proxy == nil {
		return
	}
	fillNetwork(res, sb.proxy.Detach())
}

func fillNetwork(res *Result, rep proxy.Report) {
	if res == nil {
		return
	}
	res.NetworkLogs = append(res.NetworkLogs, rep.Entries...)
	res.SecurityEvents = append(res.SecurityEvents, rep.Events...)
}

// networkEnv is the environment the filtered network adds to every process
// of an execution: the proxy for both URL schemes in both spellings, and
// the filter (as the reference exposed it). No NO_PROXY: nothing is
// reachable but through the proxy.
func (e *Engine) networkEnv() []string {
	if e.opts.Network != NetworkFiltered {
		return nil
	}
	var env []string
	if f := e.opts.NetworkFilter; f != nil {
		env = append(env, "ISOL8_WHITELIST="+jsonList(f.Whitelist), "ISOL8_BLACKLIST="+jsonList(f.Blacklist))
	}
	return append(env,
		"HTTP_PROXY="+proxy.URL, "HTTPS_PROXY="+proxy.URL,
		"http_proxy="+proxy.URL, "https_proxy="+proxy.URL)
}

func jsonList(l []string) string {
	if l == nil {
		l = []string{}
	}
	b, _ := json.Marshal(l)
	return string(b)
}

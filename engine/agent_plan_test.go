package engine

import (
	"strings"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/isol8/isol8/runtimes"
)

// The agent runtime's network checks come first and in the contract's
// order; other runtimes are unaffected; the agent's command line carries
// the prompt quoted and the flags verbatim.
func TestAgentPlan(t *testing.T) {
	e, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		network string
		filter  *NetworkFilter
		req     Request
		want    string
	}{
		{NetworkNone, nil, Request{Runtime: "agent", Code: "hi"}, TextAgentNeedsNetwork},
		{NetworkNone, nil, Request{Runtime: "agent", Cmd: "pi --version"}, TextAgentNeedsNetwork},
		// before source exclusivity
		{NetworkNone, nil, Request{Runtime: "agent", Code: "a", Cmd: "b"}, TextAgentNeedsNetwork},
		{NetworkFiltered, nil, Request{Runtime: "agent", Code: "hi"}, TextAgentNeedsWhitelist},
		{NetworkFiltered, &NetworkFilter{}, Request{Runtime: "agent", Code: "hi"}, TextAgentNeedsWhitelist},
		{NetworkFiltered, &NetworkFilter{Whitelist: []string{`^api\.example\.com$`}}, Request{Runtime: "agent", Code: "hi"}, ""},
		{NetworkHost, nil, Request{Runtime: "agent", Code: "hi"}, ""},
		{NetworkNone, nil, Request{Runtime: "python", Code: "1"}, ""},
	} {
		e.opts.Network, e.opts.NetworkFilter = tc.network, tc.filter
		_, err := e.plan(tc.req)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s %+v: %v", tc.network, tc.req, err)
		case tc.want != "" && (err == nil || err.Error() != tc.want || !errdefs.IsInvalidArgument(err)):
			t.Errorf("%s %+v: %v, want %q", tc.network, tc.req, err, tc.want)
		}
	}
	e.opts.Network = NetworkHost
	p, err := e.plan(Request{Runtime: "agent", Code: "it's", AgentFlags: "--model m --thinking"})
	if err != nil {
		t.Fatal(err)
	}
	want := "pi --no-session --append-system-prompt " + runtimes.ShellQuote(runtimes.AgentSystemPrompt) + " --model m --thinking -p 'it'\\''s'"
	if len(p.argv) != 3 || p.argv[0] != "bash" || p.argv[1] != "-c" || p.argv[2] != want {
		t.Errorf("argv %q, want bash -c %q", p.argv, want)
	}
	if p.image != "isol8:agent" || len(p.files) != 0 {
		t.Errorf("image %s files %d", p.image, len(p.files))
	}
	if !strings.Contains(TextAgentNeedsNetwork, "--net host") {
		t.Error("text")
	}
}

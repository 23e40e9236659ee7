package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// stubProvider is an OpenAI-compatible chat completions endpoint on
// loopback that answers every request with one fixed message and records
// what it was sent.
type stubProvider struct {
	mu       sync.Mutex
	auth     []string
	bodies   []string
	addr     string
	response string
}

func startStubProvider(t *testing.T, response string) *stubProvider {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &stubProvider{addr: ln.Addr().String(), response: response}
	srv := &http.Server{Handler: http.HandlerFunc(s.serve)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *stubProvider) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	s.bodies = append(s.bodies, string(body))
	s.mu.Unlock()
	if r.URL.Path != "/v1/chat/completions" {
		http.NotFound(w, r)
		return
	}
	var req struct {
		Stream bool `json:"stream"`
	}
	_ = json.Unmarshal(body, &req)
	content, _ := json.Marshal(s.response)
	if !req.Stream {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"c1","object":"chat.completion","created":1,"model":"stub-model","choices":[{"index":0,"message":{"role":"assistant","content":%s},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`, content)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	fmt.Fprintf(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"stub-model\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":%s},\"finish_reason\":null}]}\n\n", content)
	fmt.Fprint(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"stub-model\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,\"total_tokens\":2}}\n\n")
	fmt.Fprint(w, "data: [DONE]\n\n")
}

// The agent runtime end to end: pi, pointed by its models.json at a stub
// OpenAI-compatible provider on host loopback, reaches it through the
// filtered network's proxy (the only way out; the allow list names just
// the provider), gets the prompt and the isol8 system prompt,
// authenticates with the API key passed as a secret, and prints the
// answer, in which the secret is masked.
func TestAgentEndToEnd(t *testing.T) {
	e := newTestEngine(t, Options{})
	mustHaveImage(t, e, "agent")
	const secret = "sk-stub-test-4f9a1c"
	stub := startStubProvider(t, "hello from the stub provider, key "+secret)
	_, port, _ := net.SplitHostPort(stub.addr)
	models := fmt.Sprintf(`{"providers":{"stub":{"baseUrl":"http://provider.isol8.test:%s/v1","api":"openai-completions","apiKey":"STUB_API_KEY",`+
		`"compat":{"supportsDeveloperRole":false,"supportsReasoningEffort":false},"models":[{"id":"stub-model"}]}}}`, port)
	h := newTestHost(t, HostOptions{AllowPrivateDestinations: true, Resolver: testResolver{}})
	ae, err := h.NewEngine(FilteredNetwork(Options{PidsLimit: 200, SandboxSize: "2g", LogNetwork: true,
		Secrets: map[string]string{"STUB_API_KEY": secret}}, []string{`^provider\.isol8\.test$`}, nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ae.Stop(context.Background()) })
	r := run(t, ae, Request{Runtime: "agent", TimeoutMs: 60000,
		SetupScript: "mkdir -p /sandbox/.pi/agent && cat > /sandbox/.pi/agent/models.json <<'EOF'\n" + models + "\nEOF",
		AgentFlags:  "--provider stub --model stub-model",
		Code:        "Say hello, it's a test"})
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, "hello from the stub provider, key ***") || strings.Contains(r.Stdout+r.Stderr, secret) {
		t.Fatalf("agent run: exit %d stdout %q stderr %q", r.ExitCode, r.Stdout, r.Stderr)
	}
	stub.mu.Lock()
	defer stub.mu.Unlock()
	if len(stub.bodies) == 0 {
		t.Fatal("the stub provider got no request")
	}
	last := stub.bodies[len(stub.bodies)-1]
	for _, want := range []string{"Say hello, it's a test", "You are running inside an isol8 sandbox", `"model":"stub-model"`} {
		if !strings.Contains(last, want) {
			t.Errorf("provider request lacks %q:\n%.2000s", want, last)
		}
	}
	if got := stub.auth[len(stub.auth)-1]; got != "Bearer "+secret {
		t.Errorf("Authorization %q, want the secret", got)
	}
	if len(r.NetworkLogs) == 0 || r.NetworkLogs[0].Host != "provider.isol8.test" || r.NetworkLogs[0].Action != "ALLOW" {
		t.Errorf("network logs %+v, want the provider allowed through the proxy", r.NetworkLogs)
	}
}

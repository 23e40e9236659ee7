package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ctrd "github.com/isol8/isol8/driver/containerd"
	"github.com/isol8/isol8/image"
	"github.com/isol8/isol8/internal/testenv"
)

// removeCustomAtEnd removes the test's own custom images.
func removeCustomAtEnd(t *testing.T, names ...string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		drv, err := ctrd.New(ctx, ctrd.Config{Address: testenv.MustHaveContainerd(t)})
		if err != nil {
			t.Error(err)
			return
		}
		defer drv.Close()
		for _, n := range names {
			_ = image.Remove(ctx, drv, n)
		}
	})
}

// build, the same build again (a no-op), list-custom, run --image, and
// setup building a prebuilt image from the config, with the real binary.
func TestE2ECustomImages(t *testing.T) {
	testenv.MustHaveRoot(t)
	var b [4]byte
	_, _ = rand.Read(b[:])
	tag := "h-images-e2e:" + hex.EncodeToString(b[:])
	pre := "h-images-e2e-pre:" + hex.EncodeToString(b[:])
	removeCustomAtEnd(t, tag, pre)

	args := []string{"build", "--base", "python", "--tag", tag, "--setup", "echo prepared > /sandbox/ready"}
	t0 := time.Now()
	r := runCLI(t, "", args...)
	if r.code != 0 || !strings.Contains(r.stderr, "[OK] Built image: "+tag) ||
		r.stdout != "\n[DONE] Custom image build complete!\n       Runtime: python\n       Setup: echo prepared > /sandbox/ready\n       Image: "+tag+"\n" {
		t.Fatalf("build: %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	t.Logf("isol8 build (setup script): %v", time.Since(t0))
	t0 = time.Now()
	r = runCLI(t, "", args...)
	if r.code != 0 || !strings.Contains(r.stderr, "[OK] "+tag+": Up to date") {
		t.Fatalf("second build: %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	t.Logf("isol8 build (up to date): %v", time.Since(t0))

	r = runCLI(t, "", "list-custom")
	want := "  📦 " + tag + "\n     Runtime:      python\n     Dependencies: (none)\n     Setup:        echo prepared > /sandbox/ready\n     Size:         "
	if r.code != 0 || !strings.Contains(r.stdout, want) {
		t.Errorf("list-custom: %d\n%s\nwant it to contain\n%s", r.code, r.stdout, want)
	}

	r = runCLI(t, "", "run", "--image", tag, "-e", "print(open('/sandbox/ready').read().strip())")
	if r.code != 0 || r.stdout != "prepared\n" {
		t.Errorf("run --image: %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}

	cfg := filepath.Join(t.TempDir(), "isol8.config.json")
	if err := os.WriteFile(cfg, []byte(`{"prebuiltImages":[{"tag":"`+pre+`","runtime":"bash","installPackages":[],"setupScript":"echo pre"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, "", "--config", cfg, "setup")
	if r.code != 0 || !strings.Contains(r.stderr, "[OK] "+pre+" (bash: )") || !strings.HasSuffix(r.stdout, "[DONE] Setup complete!\n") {
		t.Fatalf("setup with a prebuilt image: %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, "", "--config", cfg, "setup")
	if r.code != 0 || !strings.Contains(r.stderr, "[OK] "+pre+" (already exists)") {
		t.Fatalf("setup again: %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
}

// `isol8 run -r agent` with the real binary: pi, pointed at a stub
// OpenAI-compatible provider on loopback by a --setup script, answers the
// prompt; --agent-flags reach pi, the key goes in as a masked --secret.
func TestE2EAgent(t *testing.T) {
	testenv.MustHaveRoot(t)
	const secret = "sk-e2e-7d1f0b"
	var (
		mu   sync.Mutex
		seen []string
	)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization")+" "+string(body))
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m1","choices":[{"index":0,"delta":{"role":"assistant","content":"pong `+secret+`"},"finish_reason":null}]}`+"\n\n")
		fmt.Fprint(w, `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\ndata: [DONE]\n\n")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	models := `{"providers":{"stub":{"baseUrl":"http://` + ln.Addr().String() + `/v1","api":"openai-completions","apiKey":"STUB_KEY",` +
		`"compat":{"supportsDeveloperRole":false,"supportsReasoningEffort":false},"models":[{"id":"m1"}]}}}`
	setup := "mkdir -p ~/.pi/agent && printf '%s' '" + models + "' > ~/.pi/agent/models.json"
	r := runCLI(t, "", "run", "-r", "agent", "-e", "ping, it's me", "--net", "host", "--secret", "STUB_KEY="+secret,
		"--setup", setup, "--agent-flags", "--provider stub --model m1", "--timeout", "60000")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "pong ***" {
		t.Fatalf("agent run: %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) == 0 || !strings.HasPrefix(seen[len(seen)-1], "Bearer "+secret+" ") || !strings.Contains(seen[len(seen)-1], `ping, it's me`) {
		t.Errorf("provider saw %q", seen)
	}
}

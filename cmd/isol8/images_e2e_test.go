package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
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

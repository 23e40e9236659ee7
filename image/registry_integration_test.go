package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/isol8/isol8/driver"
	ctrd "github.com/isol8/isol8/driver/containerd"
	"github.com/isol8/isol8/engine"
	"github.com/isol8/isol8/image"
	"github.com/isol8/isol8/internal/testenv"
)

// startRegistry runs Debian's docker-registry on a free loopback port with
// its storage in a temporary directory, until the test ends.
func startRegistry(t *testing.T) string {
	t.Helper()
	testenv.MustHaveCommand(t, "docker-registry")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	conf := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), addr)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command("docker-registry", "serve", cfg)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry on %s did not come up: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// plainBaseLayer is the cached Debian base layer without what isol8 adds
// (the sandbox user, /sandbox, the init's mountpoint): an ordinary
// distribution image, as a registry would serve it.
func plainBaseLayer(t *testing.T) string {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(image.DefaultCacheDir, "base", "*", "layer.tar"))
	if len(matches) == 0 {
		if testenv.Strict() {
			t.Fatal("no cached base layer (run `isol8 setup`)")
		}
		t.Skip("no cached base layer (run `isol8 setup`)")
	}
	in, err := os.Open(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out := filepath.Join(t.TempDir(), "plain.tar")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr, tw := tar.NewReader(in), tar.NewWriter(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n := strings.TrimPrefix(hdr.Name, "./")
		if n == "sandbox/" || n == ".isol8-init" {
			continue
		}
		var body io.Reader = tr
		if n == "etc/passwd" || n == "etc/group" || n == "etc/shadow" || n == "etc/gshadow" {
			data, _ := io.ReadAll(tr)
			var kept []string
			for _, line := range strings.SplitAfter(string(data), "\n") {
				if !strings.HasPrefix(line, "sandbox:") {
					kept = append(kept, line)
				}
			}
			s := strings.Join(kept, "")
			hdr.Size = int64(len(s))
			body = strings.NewReader(s)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// pushPlainImage pushes an image of the plain base layer (gzip) to the
// registry and returns its reference pinned by digest.
func pushPlainImage(t *testing.T, addr string) string {
	t.Helper()
	layer, err := tarball.LayerFromFile(plainBaseLayer(t))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, Cmd: []string{"bash"}})
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.ConfigFile(img, mustConfig(t, img))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(addr+"/test/debian:bookworm", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	dg, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return addr + "/test/debian@" + dg.String()
}

func mustConfig(t *testing.T, img v1.Image) *v1.ConfigFile {
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	return cfg
}

// syncBuf collects progress output.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// setup --source registry: a plain Debian image pushed to a registry the
// test runs on loopback is pulled by digest, gets isol8's layer and runs
// as the bash runtime, in a containerd namespace of the test's own. The
// same reference again is up to date.
func TestSetupFromRegistry(t *testing.T) {
	testenv.MustHaveRoot(t)
	addr := startRegistry(t)
	ref := pushPlainImage(t, addr)

	caddr := testenv.MustHaveContainerd(t)
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	ns := "h-images-registry-" + hex.EncodeToString(rb[:])
	drv, err := ctrd.New(t.Context(), ctrd.Config{Address: caddr, Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		names, _ := drv.ListImages(ctx, nil)
		for _, n := range names {
			_ = drv.RemoveImage(ctx, n)
		}
		_ = drv.Client().NamespaceService().Delete(namespaces.WithNamespace(ctx, ns), ns)
		drv.Close()
	})

	var progress syncBuf
	t0 := time.Now()
	res, err := image.SetupFromRegistry(t.Context(), drv, map[string]string{"bash": ref}, image.Options{Progress: &progress})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	t.Logf("pull and import: %v", time.Since(t0))
	if len(res) != 1 || res[0].UpToDate || !strings.Contains(progress.String(), "pull bash") || !strings.Contains(progress.String(), "[OK] bash (") {
		t.Errorf("results %+v, progress:\n%s", res, progress.String())
	}
	info, err := drv.ImageInfo(t.Context(), "isol8:bash")
	if err != nil {
		t.Fatal(err)
	}
	if info.Labels["isol8.source"] != ref || info.Labels["isol8.managed"] != "true" || len(info.Layers) != 2 {
		t.Errorf("image %+v", info)
	}
	res, err = image.SetupFromRegistry(t.Context(), drv, map[string]string{"bash": ref}, image.Options{Progress: &progress})
	if err != nil || len(res) != 1 || !res[0].UpToDate {
		t.Errorf("second setup: %+v %v", res, err)
	}

	e, err := engine.New(engine.Options{InitPath: testenv.InitBinary(t),
		NewDriver: func(ctx context.Context, log *slog.Logger) (driver.Driver, error) {
			return ctrd.New(ctx, ctrd.Config{Address: caddr, Namespace: ns, Logger: log})
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Stop(context.Background()) })
	out, err := e.Execute(t.Context(), engine.Request{Runtime: "bash",
		Code: "id; stat -c '%U:%G %a' /sandbox; grep -c ^sandbox: /etc/passwd; cat /etc/debian_version >/dev/null && echo debian"})
	if err != nil {
		t.Fatal(err)
	}
	want := "uid=100(sandbox) gid=101(sandbox) groups=101(sandbox)\nsandbox:sandbox 755\n1\ndebian"
	if out.ExitCode != 0 || out.Stdout != want {
		t.Errorf("run in the pulled image: exit %d stdout %q stderr %q, want %q", out.ExitCode, out.Stdout, out.Stderr, want)
	}

	// References must be pinned and name known runtimes.
	for want, refs := range map[string]map[string]string{
		"is not pinned":   {"bash": addr + "/test/debian:bookworm"},
		"unknown runtime": {"ruby": ref},
	} {
		if _, err := image.SetupFromRegistry(t.Context(), drv, refs, image.Options{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v, want %q", refs, err, want)
		}
	}
}

package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"

	"github.com/isol8/isol8/driver"
	ctrd "github.com/isol8/isol8/driver/containerd"
	"github.com/isol8/isol8/image"
	"github.com/isol8/isol8/internal/testenv"
)

// uniqueTag is a custom image name no other test or helper uses.
func uniqueTag(t *testing.T, what string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "h-images-test-" + what + ":" + hex.EncodeToString(b[:])
}

// removeImageAtEnd removes a test's own custom image.
func removeImageAtEnd(t *testing.T, e *Engine, name string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := image.Remove(ctx, e.host.drv, name); err != nil && !errdefs.IsNotFound(err) {
			t.Errorf("remove %s: %v", name, err)
		}
	})
}

// A custom image with a setup script: built, the same recipe again is up
// to date, --force rebuilds; it is listed with its recipe, and runs with
// its script before the request's own.
func TestCustomImageSetupScript(t *testing.T) {
	e := newTestEngine(t, Options{})
	mustHaveImage(t, e, "python")
	tag := uniqueTag(t, "setup")
	removeImageAtEnd(t, e, tag)
	o := BuildOptions{Tag: tag, Runtime: "python", Setup: "echo from-image > /sandbox/marker\necho image-setup-ran"}

	t0 := time.Now()
	res, err := e.BuildImage(t.Context(), o)
	if err != nil || res.UpToDate {
		t.Fatalf("first build: %+v, %v", res, err)
	}
	t.Logf("build (cold): %v", time.Since(t0))
	t0 = time.Now()
	res, err = e.BuildImage(t.Context(), o)
	if err != nil || !res.UpToDate {
		t.Fatalf("second build: %+v, %v; want up to date", res, err)
	}
	t.Logf("build (up to date): %v", time.Since(t0))
	before, err := e.host.drv.ImageInfo(t.Context(), tag)
	if err != nil {
		t.Fatal(err)
	}
	o.Force = true
	if res, err = e.BuildImage(t.Context(), o); err != nil || res.UpToDate {
		t.Fatalf("forced build: %+v, %v", res, err)
	}
	after, err := e.host.drv.ImageInfo(t.Context(), tag)
	if err != nil {
		t.Fatal(err)
	}
	if !after.Created.After(before.Created) && after.ID == before.ID {
		t.Errorf("forced build left the image as it was (%s, %v)", after.ID, after.Created)
	}
	checkSetupOnlyImage(t, e, after, tag, o.Setup)

	ce := newTestEngine(t, Options{Image: tag})
	r := run(t, ce, Request{Runtime: "python", SetupScript: "echo request >> /sandbox/marker",
		Code: "print(open('/sandbox/marker').read(), end='')"})
	if r.ExitCode != 0 || r.Stdout != "from-image\nrequest" {
		t.Errorf("run in custom image: exit %d stdout %q stderr %q", r.ExitCode, r.Stdout, r.Stderr)
	}
	// A failing image script fails the run like a request script.
	bad := uniqueTag(t, "badsetup")
	removeImageAtEnd(t, e, bad)
	if _, err := e.BuildImage(t.Context(), BuildOptions{Tag: bad, Runtime: "bash", Setup: "echo nope >&2; exit 3"}); err != nil {
		t.Fatal(err)
	}
	be := newTestEngine(t, Options{Image: bad})
	_, err = be.Execute(t.Context(), Request{Runtime: "bash", Code: "echo never"})
	if err == nil || !strings.Contains(err.Error(), "Setup script failed (exit code 3): nope") {
		t.Errorf("failing image setup: %v", err)
	}
}

// checkSetupOnlyImage checks a python custom image with only a setup
// script: its labels (recipe included), every layer shared with the
// runtime image, and its entry in the custom image list.
func checkSetupOnlyImage(t *testing.T, e *Engine, info driver.ImageInfo, tag, setup string) {
	t.Helper()
	for k, v := range map[string]string{"isol8.managed": "true", "isol8.custom": "true", "org.isol8.runtime": "python",
		"org.isol8.setup": setup, "org.isol8.dependencies": ""} {
		if info.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, info.Labels[k], v)
		}
	}
	if info.Labels["org.isol8.deps.hash"] == "" {
		t.Error("label org.isol8.deps.hash is empty")
	}
	base, err := e.host.drv.ImageInfo(t.Context(), image.Name("python"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(info.Layers, base.Layers) {
		t.Errorf("layers %v, want the base's %v", info.Layers, base.Layers)
	}
	list, err := e.host.ListCustomImages(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(list, func(c CustomImage) bool { return c.Name == tag })
	if i < 0 {
		t.Fatalf("list-custom lacks %s: %+v", tag, list)
	}
	if c := list[i]; c.Runtime != "python" || len(c.Packages) != 0 || c.Setup != setup || c.Size < 50<<20 || c.Created.IsZero() {
		t.Errorf("listed %+v", c)
	}
}

// Custom builds refuse what would hurt: the runtime images' names, images
// isol8 did not build, bad names and packages.
func TestCustomImageRefusals(t *testing.T) {
	e := newTestEngine(t, Options{})
	mustHaveImage(t, e, "python")
	for _, tc := range []struct {
		o    BuildOptions
		want string
	}{
		{BuildOptions{Tag: "isol8:python", Runtime: "python", Setup: "true"}, "is the base image of runtime python"},
		{BuildOptions{Tag: "Upper:x", Runtime: "python", Setup: "true"}, "Invalid image tag"},
		{BuildOptions{Tag: "x:y", Runtime: "agent", Setup: "true"}, "Custom images of the agent runtime are not supported yet"},
		{BuildOptions{Tag: "x:y", Runtime: "bun", Packages: []string{"left-pad"}}, "installing bun packages into images is not supported yet"},
		{BuildOptions{Tag: "x:y", Runtime: "python", Packages: []string{"a;b"}}, "Invalid package name"},
		{BuildOptions{Tag: "x:y", Runtime: "python"}, "No packages or setup script specified"},
		{BuildOptions{Tag: "x:y", Runtime: "python", Setup: strings.Repeat("echo hi\n", 600)}, "Setup script too long for a custom image: 4800 bytes, at most 4000"},
	} {
		_, err := e.BuildImage(t.Context(), tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.o, err, tc.want)
		}
	}
	if info, err := e.host.drv.ImageInfo(t.Context(), "isol8:python"); err != nil || info.Labels[image.LabelCustom] != "" {
		t.Errorf("isol8:python touched: %+v, %v", info, err)
	}
}

// populateFakePython fills a build's /sandbox directory from inside a
// build sandbox, the way `pip install --user` would: a package in
// ~/.local/lib/python3.11/site-packages and a console script in
// ~/.local/bin. It also plants a symbolic link to the host's /etc where a
// package tree would be, which the build must not follow.
func populateFakePython(e *Engine, pkg string) image.Populate {
	tool := strings.ReplaceAll(pkg, "_", "-")
	script := "set -e\n" +
		"site=~/.local/lib/python3.11/site-packages\n" +
		"mkdir -p $site/" + pkg + " ~/.local/bin ~/.local/lib/python3.12\n" +
		"echo 'VALUE = 42' > $site/" + pkg + "/__init__.py\n" +
		"printf '#!/usr/bin/python3\\nimport " + pkg + "\\nprint(\"tool\", " + pkg + ".VALUE)\\n' > ~/.local/bin/" + tool + "\n" +
		"chmod 4755 ~/.local/bin/" + tool + "\n" +
		"ln -s /etc ~/.local/lib/python3.12/site-packages\n" +
		"test \"$(id -u)\" = 100\n"
	return func(ctx context.Context, dir string) error {
		return e.host.buildRun(ctx, dir, Request{Runtime: "python", Cmd: script}, Options{Network: NetworkNone})
	}
}

// Installs land in the image, not in /sandbox: what a build sandbox wrote
// to its /sandbox (a host directory) becomes a layer at the system
// locations, owned by root, without set-id bits or planted links; a request asking for the image's packages runs in it with no
// install, and packages no image covers still meet the install step.
func TestCustomImagePackages(t *testing.T) {
	e := newTestEngine(t, Options{})
	mustHaveImage(t, e, "python")
	tag := uniqueTag(t, "pkgs")
	removeImageAtEnd(t, e, tag)
	var b [4]byte
	_, _ = rand.Read(b[:])
	pkg := "h_images_fake_" + hex.EncodeToString(b[:])
	r := image.CustomRecipe{Tag: tag, Runtime: "python", Packages: []string{pkg}, Setup: "echo image-setup"}
	res, err := image.BuildCustom(t.Context(), e.host.drv, r, populateFakePython(e, pkg), image.Options{})
	if err != nil || res.UpToDate {
		t.Fatalf("build: %+v, %v", res, err)
	}
	t.Logf("build with a build sandbox: %v", res.Duration)
	if res, err = image.BuildCustom(t.Context(), e.host.drv, r, populateFakePython(e, pkg), image.Options{}); err != nil || !res.UpToDate {
		t.Fatalf("second build: %+v, %v; want up to date", res, err)
	}
	info, err := e.host.drv.ImageInfo(t.Context(), tag)
	if err != nil {
		t.Fatal(err)
	}
	base, err := e.host.drv.ImageInfo(t.Context(), image.Name("python"))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Layers) != len(base.Layers)+1 || !slices.Equal(info.Layers[:len(base.Layers)], base.Layers) {
		t.Errorf("layers %v, want the base's %v plus one", info.Layers, base.Layers)
	}

	var logBuf syncBuffer
	pe := newTestEngine(t, Options{Logger: slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	out := run(t, pe, Request{Runtime: "python", InstallPackages: []string{" " + pkg, pkg},
		Code: "import " + pkg + ", subprocess\nprint(" + pkg + ".VALUE, " + pkg + ".__file__)\n" +
			"print(subprocess.run(['" + strings.ReplaceAll(pkg, "_", "-") + "'], capture_output=True, text=True).stdout, end='')"})
	want := "42 /usr/local/lib/python3.11/dist-packages/" + pkg + "/__init__.py\ntool 42"
	if out.ExitCode != 0 || out.Stdout != want {
		t.Errorf("run with the image's packages: exit %d stdout %q stderr %q, want %q", out.ExitCode, out.Stdout, out.Stderr, want)
	}
	// The planted link was not followed; set-id bits were dropped.
	out = run(t, pe, Request{Runtime: "python", InstallPackages: []string{pkg},
		Code: "import os, stat\nprint(os.path.exists('/usr/local/lib/python3.12/dist-packages/passwd'), oct(stat.S_IMODE(os.stat('/usr/local/bin/" + strings.ReplaceAll(pkg, "_", "-") + "').st_mode)), os.stat('/usr/local/bin/" + strings.ReplaceAll(pkg, "_", "-") + "').st_uid == os.stat('/usr/bin/python3').st_uid)"})
	if out.Stdout != "False 0o755 True" {
		t.Errorf("layer safety: %q %q", out.Stdout, out.Stderr)
	}
	if !strings.Contains(logBuf.String(), "image="+tag) {
		t.Errorf("the request was not resolved to %s:\n%s", tag, logBuf.String())
	}
	_, err = pe.Execute(t.Context(), Request{Runtime: "python", Code: "1", InstallPackages: []string{pkg, "another-" + pkg}})
	if err == nil || err.Error() != TextInstallNeedsNetwork {
		t.Errorf("packages no image covers: %v, want %q", err, TextInstallNeedsNetwork)
	}
	// Other runtimes do not match a python image.
	_, err = pe.Execute(t.Context(), Request{Runtime: "node", Code: "1", InstallPackages: []string{pkg}})
	if err == nil || err.Error() != TextInstallNeedsNetwork {
		t.Errorf("node with a python image's package: %v", err)
	}
}

// cleanup --images removes exactly the images labelled isol8.managed=true
// (runtime and custom images) and keeps an unlabelled one. It runs in a
// containerd namespace of its own, never touching the shared images.
func TestCleanupImagesExactlyLabelled(t *testing.T) {
	testenv.MustHaveCommand(t, "mmdebstrap")
	addr := testenv.MustHaveContainerd(t)
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	ns := "h-images-test-" + hex.EncodeToString(rb[:])
	drv, err := ctrd.New(t.Context(), ctrd.Config{Address: addr, Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := namespaces.WithNamespace(context.Background(), ns)
		names, _ := drv.ListImages(ctx, nil)
		for _, n := range names {
			_ = drv.RemoveImage(ctx, n)
		}
		if err := drv.Client().NamespaceService().Delete(ctx, ns); err != nil {
			t.Logf("delete namespace %s: %v", ns, err)
		}
		drv.Close()
	})
	// The bash image from the cached base (no network, a few seconds).
	if _, err := image.Setup(t.Context(), drv, image.Options{Runtimes: []string{"bash"}}); err != nil {
		t.Fatal(err)
	}
	e := newTestEngine(t, Options{NewDriver: func(ctx context.Context, log *slog.Logger) (driver.Driver, error) {
		return ctrd.New(ctx, ctrd.Config{Address: addr, Namespace: ns, Logger: log})
	}})
	for _, tag := range []string{"h-images-a:1", "h-images-b:1"} {
		if _, err := e.BuildImage(t.Context(), BuildOptions{Tag: tag, Runtime: "bash", Setup: "true"}); err != nil {
			t.Fatal(err)
		}
	}
	// A foreign image: the same layers, no isol8 labels.
	if err := copyImage(t, drv, ns, "isol8:bash", "foreign:1", map[string]string{"owner": "someone-else"}); err != nil {
		t.Fatal(err)
	}
	rep, err := e.Cleanup(t.Context(), CleanupOptions{Images: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"h-images-a:1", "h-images-b:1", "isol8:bash"}; !slices.Equal(rep.Images, want) || rep.ImagesRemoved != 3 || len(rep.ImagesFailed) != 0 {
		t.Errorf("cleanup images %v removed %d failed %v, want %v", rep.Images, rep.ImagesRemoved, rep.ImagesFailed, want)
	}
	left, err := drv.ListImages(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(left, []string{"foreign:1"}) {
		t.Errorf("images left %v, want only foreign:1", left)
	}
}

// copyImage makes name, an image of src's layers that isol8 does not
// manage: built as a custom image, then its labels replaced in containerd.
func copyImage(t *testing.T, d *ctrd.Driver, ns, src, name string, labels map[string]string) error {
	t.Helper()
	if _, err := image.BuildCustom(t.Context(), d, image.CustomRecipe{Tag: name, Runtime: strings.TrimPrefix(src, "isol8:"), Setup: "true"}, nil, image.Options{}); err != nil {
		return err
	}
	ctx := namespaces.WithNamespace(t.Context(), ns)
	is := d.Client().ImageService()
	img, err := is.Get(ctx, name)
	if err != nil {
		return err
	}
	img.Labels = labels
	_, err = is.Update(ctx, img, "labels")
	return err
}

// The agent image: pi, bun, git and bash, as the contract lists them. The
// image is built here when missing (it is this package's own, not one of
// the five shared runtime images).
func TestAgentImage(t *testing.T) {
	e := newTestEngine(t, Options{})
	if _, err := e.host.drv.ImageInfo(t.Context(), image.Name("agent")); errdefs.IsNotFound(err) {
		testenv.MustHaveCommand(t, "mmdebstrap")
		t0 := time.Now()
		if err := image.Ensure(t.Context(), e.host.drv, "agent", image.Options{Progress: testWriter{t}}); err != nil {
			t.Fatal(err)
		}
		t.Logf("agent image built in %v", time.Since(t0))
	}
	ae := newTestEngine(t, Options{Image: image.Name("agent"), PidsLimit: 200})
	r := run(t, ae, Request{Runtime: "bash", TimeoutMs: 60000, Code: "pi --version && bun --version && git --version && bash --version | head -1 && pi --help >/dev/null && echo help-ok"})
	lines := strings.Split(r.Stdout, "\n")
	semver := func(s string) bool {
		parts := strings.Split(strings.TrimSpace(s), ".")
		return len(parts) == 3 && parts[0] != "" && strings.Trim(parts[0]+parts[1], "0123456789") == ""
	}
	if r.ExitCode != 0 || len(lines) != 5 || !semver(lines[0]) || !semver(lines[1]) ||
		!strings.HasPrefix(lines[2], "git version") || !strings.Contains(lines[3], "GNU bash") || lines[4] != "help-ok" {
		t.Errorf("agent image tools: exit %d stdout %q stderr %q", r.ExitCode, r.Stdout, r.Stderr)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

package image

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// defaultNPMRegistry is used only when neither the environment nor npm's
// own configuration names a registry.
const defaultNPMRegistry = "https://registry.npmjs.org/"

// npmEpoch is the fixed mtime npm writes into every published tarball; the
// directories this package adds to npm-sourced layers get it too, so those
// layers are identical from build to build.
var npmEpoch = time.Date(1985, 10, 26, 8, 15, 0, 0, time.UTC)

// resolveRegistry picks the npm registry: NPM_CONFIG_REGISTRY, then
// npm_config_registry, then `npm config get registry` (npmConfig, may be
// nil), then the public default. Values that are not http(s) URLs are
// ignored. The result ends in "/".
func resolveRegistry(getenv func(string) string, npmConfig func() (string, error)) string {
	candidates := []func() string{
		func() string { return getenv("NPM_CONFIG_REGISTRY") },
		func() string { return getenv("npm_config_registry") },
		func() string {
			if npmConfig == nil {
				return ""
			}
			v, err := npmConfig()
			if err != nil {
				return ""
			}
			return v
		},
	}
	for _, c := range candidates {
		v := strings.TrimSpace(c())
		if strings.HasPrefix(v, "https://") || strings.HasPrefix(v, "http://") {
			return strings.TrimSuffix(v, "/") + "/"
		}
	}
	return defaultNPMRegistry
}

// npmConfigRegistry asks an installed npm for its registry setting.
func npmConfigRegistry(ctx context.Context) func() (string, error) {
	return func() (string, error) {
		npm, err := exec.LookPath("npm")
		if err != nil {
			return "", err
		}
		ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, npm, "config", "get", "registry").Output() // stderr (warnings) dropped
		if err != nil {
			return "", err
		}
		return string(out), nil
	}
}

// tarballURL is the conventional location of a package tarball in a
// registry: <registry>/<name>/-/<basename>-<version>.tgz, where basename
// drops the scope.
func tarballURL(registry string, p npmPackage) string {
	base := p.Name
	if i := strings.LastIndex(base, "/"); i >= 0 {
		base = base[i+1:]
	}
	return strings.TrimSuffix(registry, "/") + "/" + p.Name + "/-/" + base + "-" + p.Version + ".tgz"
}

// cacheFileName is the tarball's file name in the npm cache directory.
func (p npmPackage) cacheFileName() string {
	return strings.ReplaceAll(p.Name, "/", "__") + "-" + p.Version + ".tgz"
}

func (p npmPackage) String() string { return p.Name + "@" + p.Version }

// integrityHash parses a Subresource Integrity string ("sha512-<base64>")
// into a hash to feed and the digest it must produce.
func integrityHash(integrity string) (hash.Hash, []byte, error) {
	algo, b64, ok := strings.Cut(strings.TrimSpace(integrity), "-")
	if !ok {
		return nil, nil, fmt.Errorf("malformed integrity %q", integrity)
	}
	want, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, nil, fmt.Errorf("malformed integrity %q: %w", integrity, err)
	}
	var h hash.Hash
	switch algo {
	case "sha512":
		h = sha512.New()
	case "sha384":
		h = sha512.New384()
	case "sha256":
		h = sha256.New()
	case "sha1":
		h = sha1.New()
	default:
		return nil, nil, fmt.Errorf("unsupported integrity algorithm %q", algo)
	}
	if len(want) != h.Size() {
		return nil, nil, fmt.Errorf("malformed integrity %q: %d-byte digest for %s", integrity, len(want), algo)
	}
	return h, want, nil
}

// errIntegrity marks a tarball whose digest does not match its pin.
var errIntegrity = errors.New("integrity mismatch")

// verifyIntegrity reads r to the end and checks it against integrity.
func verifyIntegrity(r io.Reader, integrity string) error {
	h, want, err := integrityHash(integrity)
	if err != nil {
		return err
	}
	if _, err := io.Copy(h, r); err != nil {
		return err
	}
	got := h.Sum(nil)
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return fmt.Errorf("%w: got %s", errIntegrity, strings.SplitN(integrity, "-", 2)[0]+"-"+base64.StdEncoding.EncodeToString(got))
	}
	return nil
}

func verifyFile(name, integrity string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return verifyIntegrity(f, integrity)
}

// npmFetcher downloads pinned tarballs into a cache directory.
type npmFetcher struct {
	dir      string // cache directory
	registry string
	client   *http.Client
}

func newNPMFetcher(dir, registry string) *npmFetcher {
	tr := http.DefaultTransport.(*http.Transport).Clone() // ProxyFromEnvironment, system CA pool
	tr.ResponseHeaderTimeout = time.Minute
	return &npmFetcher{dir: dir, registry: registry, client: &http.Client{Transport: tr}}
}

// fetch returns the path of p's verified tarball, downloading it unless a
// cached copy passes verification. A cached copy that fails is replaced.
func (f *npmFetcher) fetch(ctx context.Context, p npmPackage) (string, error) {
	dest := filepath.Join(f.dir, p.cacheFileName())
	if err := verifyFile(dest, p.Integrity); err == nil {
		return dest, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		if rmErr := os.Remove(dest); rmErr != nil {
			return "", fmt.Errorf("remove bad cached tarball: %w", rmErr)
		}
	}
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		return "", err
	}
	url := tarballURL(f.registry, p)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("download %s: %w", p, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("download %s: GET %s: %s", p, url, resp.Status)
	}
	tmp, err := os.CreateTemp(f.dir, ".download-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	h, want, err := integrityHash(p.Integrity)
	if err != nil {
		tmp.Close()
		return "", err
	}
	if _, err := io.Copy(io.MultiWriter(tmp, h), resp.Body); err != nil {
		tmp.Close()
		return "", fmt.Errorf("download %s: %w", p, err)
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if subtle.ConstantTimeCompare(h.Sum(nil), want) != 1 {
		return "", fmt.Errorf("download %s from %s: %w", p, url, errIntegrity)
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return "", err
	}
	return dest, nil
}

// safeRel cleans a path taken from a tarball and rejects absolute paths and
// paths that climb out of their root.
func safeRel(name string) (string, error) {
	if name == "" || strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("unsafe path %q", name)
	}
	c := path.Clean(name)
	if c == "." || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("unsafe path %q", name)
	}
	return c, nil
}

// layerTar writes a layer's tar stream, adding each parent directory once
// (root-owned, 0755, npmEpoch) before the first entry below it.
type layerTar struct {
	tw    *tar.Writer
	dirs  map[string]bool
	names map[string]bool
}

func newLayerTar(w io.Writer) *layerTar {
	return &layerTar{tw: tar.NewWriter(w), dirs: map[string]bool{}, names: map[string]bool{}}
}

func (l *layerTar) parents(name string) error {
	dir := path.Dir(name)
	if dir == "." || l.dirs[dir] {
		return nil
	}
	if err := l.parents(dir); err != nil {
		return err
	}
	l.dirs[dir] = true
	return l.tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: npmEpoch, Format: tar.FormatPAX,
	})
}

func (l *layerTar) add(hdr *tar.Header, body io.Reader) error {
	if l.names[hdr.Name] || l.dirs[hdr.Name] {
		return fmt.Errorf("duplicate path %q in layer", hdr.Name)
	}
	if err := l.parents(hdr.Name); err != nil {
		return err
	}
	l.names[hdr.Name] = true
	hdr.Format = tar.FormatPAX
	if err := l.tw.WriteHeader(hdr); err != nil {
		return err
	}
	if body != nil {
		n, err := io.Copy(l.tw, body)
		if err != nil {
			return err
		}
		if n != hdr.Size {
			return fmt.Errorf("%s: short body (%d of %d bytes)", hdr.Name, n, hdr.Size)
		}
	}
	return nil
}

func (l *layerTar) Close() error { return l.tw.Close() }

// writeNPMLayer writes the layer of a recipe made of npm packages and
// symlinks. tarball maps a package to its verified tarball path. The output
// depends only on the tarballs and the recipe, so it is reproducible.
func writeNPMLayer(w io.Writer, r recipe, tarball func(npmPackage) string) error {
	lt := newLayerTar(w)
	for _, in := range r.NPM {
		if err := addNPMPackage(lt, in, tarball(in.Package)); err != nil {
			return fmt.Errorf("%s: %w", in.Package, err)
		}
	}
	for _, s := range r.Symlinks {
		name, err := safeRel(s.Path)
		if err != nil {
			return err
		}
		if err := lt.add(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: s.Target, Mode: 0o777, ModTime: npmEpoch}, nil); err != nil {
			return err
		}
	}
	for _, f := range r.Files {
		name, err := safeRel(f.Path)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: f.Mode, Size: int64(len(f.Content)), ModTime: npmEpoch}
		if err := lt.add(hdr, strings.NewReader(f.Content)); err != nil {
			return err
		}
	}
	return lt.Close()
}

func addNPMPackage(lt *layerTar, in npmInstall, tgz string) error {
	f, err := os.Open(tgz)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	want := map[string]string{}
	for _, file := range in.Files {
		want[file.From] = file.Dest
	}
	found, seen := map[string]bool{}, map[string]bool{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		// npm strips the first path component ("package/" by convention).
		_, rest, ok := strings.Cut(hdr.Name, "/")
		if !ok || rest == "" {
			continue
		}
		rel, err := safeRel(rest)
		if err != nil {
			return err
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
		case tar.TypeDir:
			continue // parents are added as needed
		case tar.TypeSymlink, tar.TypeLink:
			return fmt.Errorf("unexpected link %q in package", hdr.Name)
		default:
			continue
		}
		var dest string
		mode := int64(0o644)
		if hdr.Mode&0o111 != 0 {
			mode = 0o755
		}
		switch {
		case in.Tree != "":
			dest = path.Join(in.Tree, rel)
		case want[rel] != "":
			dest, mode = want[rel], 0o755
			found[rel] = true
		default:
			continue
		}
		if dest, err = safeRel(dest); err != nil {
			return err
		}
		// Some published tarballs hold a path twice; npm keeps one.
		if seen[dest] {
			continue
		}
		seen[dest] = true
		if err := lt.add(&tar.Header{
			Typeflag: tar.TypeReg, Name: dest, Mode: mode, Size: hdr.Size,
			ModTime: hdr.ModTime.Truncate(time.Second),
		}, tr); err != nil {
			return err
		}
	}
	for _, file := range in.Files {
		if !found[file.From] {
			return fmt.Errorf("package has no %s", file.From)
		}
	}
	return nil
}

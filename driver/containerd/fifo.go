package containerd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"

	"github.com/isol8/isol8/api"
)

// FIFOSetDir is the directory holding a sandbox's stdio FIFOs. It is named
// after the container, unlike cio.NewFIFOSetInDir's random directory, so
// that a process that did not create the sandbox (`isol8 cleanup`, or a
// later run after a crash) can find and remove them.
func FIFOSetDir(id string) string { return filepath.Join(fifoDir, id) }

// newFIFOSet creates the FIFO directory of sandbox id and the set in it;
// closing the set removes the directory.
func newFIFOSet(id string) (*cio.FIFOSet, error) {
	if strings.ContainsAny(id, `/\`) || id == "" || id == "." || id == ".." {
		return nil, api.InvalidArgumentf("invalid sandbox id %q", id)
	}
	dir := FIFOSetDir(id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return cio.NewFIFOSet(cio.Config{
		Stdin:  filepath.Join(dir, id+"-stdin"),
		Stdout: filepath.Join(dir, id+"-stdout"),
		Stderr: filepath.Join(dir, id+"-stderr"),
	}, func() error { return os.RemoveAll(dir) }), nil
}

// Prune removes FIFO directories and network namespace pins whose
// container no longer exists: those of processes that died before removing
// their sandboxes, and FIFO directories of earlier isol8 versions, which
// named the directory at random and the FIFOs "<id>-stdin" inside it. It
// returns how many it removed.
func (d *Driver) Prune(ctx context.Context) (int, error) {
	ctx = d.withNS(ctx)
	fifos, err := d.pruneFIFOs(ctx)
	pins, pinErr := d.pruneNetNSPins(ctx)
	return fifos + pins, errors.Join(err, pinErr)
}

// pruneNetNSPins unpins the network namespaces of vanished sandboxes. A
// pin is made after its container, so a pin without one is an orphan.
func (d *Driver) pruneNetNSPins(ctx context.Context) (int, error) {
	ids, err := netnsPins()
	if err != nil {
		return 0, err
	}
	removed := 0
	var errs []error
	for _, id := range ids {
		gone, err := d.removeIfOrphan(ctx, id, func() error { return unpinNetNS(id) })
		if err != nil {
			errs = append(errs, err)
		}
		if gone {
			removed++
		}
	}
	return removed, errors.Join(errs...)
}

// removeIfOrphan runs remove, which deletes a leftover of sandbox id, when
// the container no longer exists, and reports whether it did. FIFO
// directories and pins are shared by every containerd namespace of the
// daemon (tests and other tools use their own), so a container counts as
// gone only when no namespace has it.
func (d *Driver) removeIfOrphan(ctx context.Context, id string, remove func() error) (bool, error) {
	nss, err := d.client.NamespaceService().List(ctx)
	if err != nil {
		return false, fmt.Errorf("list namespaces: %w", err)
	}
	for _, ns := range nss {
		_, err := d.client.ContainerService().Get(namespaces.WithNamespace(ctx, ns), id)
		if err == nil {
			return false, nil
		}
		if !errdefs.IsNotFound(err) {
			return false, fmt.Errorf("look up container %s in namespace %s: %w", id, ns, err)
		}
	}
	if err := remove(); err != nil {
		return false, err
	}
	return true, nil
}

func (d *Driver) pruneFIFOs(ctx context.Context) (int, error) {
	entries, err := os.ReadDir(fifoDir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("list fifo dir: %w", err)
	}
	removed := 0
	var errs []error
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(fifoDir, e.Name())
		id := fifoOwner(dir)
		if id == "" {
			continue
		}
		gone, err := d.removeIfOrphan(ctx, id, func() error { return os.RemoveAll(dir) })
		if err != nil {
			errs = append(errs, err)
		}
		if gone {
			removed++
		}
	}
	return removed, errors.Join(errs...)
}

// fifoOwner returns the container id a FIFO directory belongs to, from the
// "<id>-stdin" FIFO inside it, or "" when it holds none.
func fifoOwner(dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	for _, e := range entries {
		if id, ok := strings.CutSuffix(e.Name(), "-stdin"); ok && id != "" {
			return id
		}
	}
	return ""
}

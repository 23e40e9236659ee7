package engine

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/isol8/isol8/driver"
	"github.com/isol8/isol8/image"
)

// SetupOptions control image setup.
type SetupOptions struct {
	Force    bool
	Runtimes []string // empty: all
	// Prebuilt are custom images to build after the runtime images; one
	// whose tag exists is kept unless Force.
	Prebuilt []BuildOptions
	// Registry, when set, names per runtime a base image reference pinned
	// by digest: those runtimes are pulled (plus isol8's layer) instead of
	// built; the others are built.
	Registry map[string]string
}

// SetupImages builds the runtime images on the engine's host (see
// Host.SetupImages).
func (e *Engine) SetupImages(ctx context.Context, o SetupOptions) error {
	return e.host.SetupImages(ctx, o)
}

// enterStarted counts an administrative call as the host's work (Stop
// waits for it) and starts the host; leave ends the work.
func (h *Host) enterStarted(ctx context.Context) (context.Context, func(), error) {
	ctx, leave, err := h.work.enter(ctx)
	if err != nil {
		return ctx, nil, err
	}
	if err := h.Start(ctx); err != nil {
		leave()
		return ctx, nil, err
	}
	return ctx, leave, nil
}

// SetupImages builds the runtime images, or confirms they are up to date.
// Progress goes to HostOptions.Progress.
func (h *Host) SetupImages(ctx context.Context, o SetupOptions) error {
	ctx, leave, err := h.enterStarted(ctx)
	if err != nil {
		return err
	}
	defer leave()
	h.imageMu.Lock()
	defer h.imageMu.Unlock()
	imgOpts := image.Options{Force: o.Force, Runtimes: o.Runtimes, Progress: h.opts.Progress, Logger: h.log}
	if len(o.Registry) > 0 {
		if imgOpts.Runtimes, err = h.setupFromRegistry(ctx, o, imgOpts); err != nil {
			return err
		}
		if len(imgOpts.Runtimes) == 0 {
			return h.setupPrebuilt(ctx, o)
		}
	}
	if _, err = image.Setup(ctx, h.drv, imgOpts); err != nil {
		return err
	}
	return h.setupPrebuilt(ctx, o)
}

// CleanupOptions control Cleanup.
type CleanupOptions struct {
	Images bool
	// DryRun only lists what would be removed.
	DryRun bool
}

// CleanupReport lists what Cleanup found and removed.
type CleanupReport struct {
	// Containers are the sandboxes no running process uses: left by a
	// crash, kept with Persist, or made by an older isol8.
	Containers []ContainerInfo
	// InUse are sandboxes whose creating process still runs (a server's
	// pool, a run in progress); Cleanup never removes them.
	InUse         []ContainerInfo
	Images        []string
	ImageIDs      map[string]string // image name → image id (hex)
	Removed       int
	Failed        []string // "<id12>: <message>"
	ImagesRemoved int
	ImagesFailed  []string
	// FIFOsRemoved counts FIFO directories of vanished sandboxes removed.
	FIFOsRemoved int
}

// ContainerInfo describes one isol8 container.
type ContainerInfo struct {
	ID      string
	Image   string
	Running bool
	Created time.Time
	// OwnerPID is the running process that uses the sandbox (InUse only).
	OwnerPID int
}

// Cleanup cleans up through the engine's host (see Host.Cleanup).
func (e *Engine) Cleanup(ctx context.Context, o CleanupOptions) (*CleanupReport, error) {
	return e.host.Cleanup(ctx, o)
}

// Cleanup lists, and unless DryRun removes, every container labelled
// isol8.managed=true whose creating process no longer runs (and with Images
// every isol8-managed image). Sandboxes a running process still uses are
// reported in InUse and left alone. It never touches anything without
// isol8's label.
func (h *Host) Cleanup(ctx context.Context, o CleanupOptions) (*CleanupReport, error) {
	ctx, leave, err := h.enterStarted(ctx)
	if err != nil {
		return nil, err
	}
	defer leave()
	infos, err := h.drv.ListSandboxes(ctx, map[string]string{driver.LabelManaged: "true"})
	if err != nil {
		return nil, err
	}
	rep := &CleanupReport{}
	for _, c := range infos {
		info := ContainerInfo{ID: c.ID, Image: c.Image, Running: c.Running, Created: c.Created}
		if pid, alive := ownerAlive(c.Labels); alive {
			info.OwnerPID = pid
			rep.InUse = append(rep.InUse, info)
			continue
		}
		rep.Containers = append(rep.Containers, info)
	}
	byCreation := func(list []ContainerInfo) {
		sort.Slice(list, func(i, j int) bool { return list[i].Created.Before(list[j].Created) })
	}
	byCreation(rep.Containers)
	byCreation(rep.InUse)
	if o.Images {
		if rep.Images, err = image.List(ctx, h.drv); err != nil {
			return nil, err
		}
		rep.ImageIDs = h.imageIDs(ctx, rep.Images)
	}
	if o.DryRun {
		return rep, nil
	}
	for _, c := range rep.Containers {
		if err := h.drv.Remove(ctx, c.ID); err != nil {
			rep.Failed = append(rep.Failed, fmt.Sprintf("%s: %v", short(c.ID), err))
			continue
		}
		rep.Removed++
	}
	// FIFO directories of sandboxes that crashed processes never removed.
	if n, err := h.drv.Prune(ctx); err != nil {
		rep.Failed = append(rep.Failed, fmt.Sprintf("fifos: %v", err))
	} else {
		rep.FIFOsRemoved = n
	}
	for _, name := range rep.Images {
		if err := image.Remove(ctx, h.drv, name); err != nil {
			rep.ImagesFailed = append(rep.ImagesFailed, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		rep.ImagesRemoved++
	}
	return rep, nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// setupFromRegistry pulls the runtimes of o.Registry (those of o.Runtimes,
// when given) and returns the runtimes left to build.
func (h *Host) setupFromRegistry(ctx context.Context, o SetupOptions, imgOpts image.Options) ([]string, error) {
	want := o.Runtimes
	if len(want) == 0 {
		want = image.Runtimes
	}
	refs := map[string]string{}
	var rest []string
	for _, rt := range want {
		if ref, ok := o.Registry[rt]; ok {
			refs[rt] = ref
		} else {
			rest = append(rest, rt)
		}
	}
	if len(refs) > 0 {
		if _, err := image.SetupFromRegistry(ctx, h.drv, refs, imgOpts); err != nil {
			return nil, err
		}
	}
	return rest, nil
}

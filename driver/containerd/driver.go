// Package containerd implements driver.Driver on containerd (client v2):
// sandboxes run with an OCI runtime such as runc, images are imported from
// OCI image layouts into the content store and unpacked for the overlayfs
// snapshotter, all in containerd namespace "isol8" (Config.Namespace names
// another). It connects to a running containerd, or starts a private one
// when containerd is installed but not running. It needs root and Linux.
package containerd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/api/types/runc/options"
	apitask "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/image-spec/identity"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/driver"
)

// Namespace is the containerd namespace isol8 uses for everything unless
// Config.Namespace names another (tests building throw-away images).
const Namespace = "isol8"

const (
	snapshotter = "overlayfs"
	runtimeName = "io.containerd.runc.v2"
	fifoDir     = "/run/isol8/fifo"
	// netnsDir holds the pins of fresh sandbox network namespaces. It is
	// the driver's own: namespaces the engine makes live elsewhere.
	netnsDir = "/run/isol8/sandbox-netns"
)

// NetNSPinPath is where the driver pins the network namespace of sandbox
// id created with driver.FreshNetwork. It is named after the sandbox, like
// FIFOSetDir, so a process that did not create the sandbox can remove it.
func NetNSPinPath(id string) string { return filepath.Join(netnsDir, id) }

// Driver implements driver.Driver on containerd.
type Driver struct {
	client        *client.Client
	address       string
	runtimeBinary string
	namespace     string
	log           *slog.Logger

	mu     sync.Mutex
	chains map[string]string // image name → chain id of its unpacked rootfs
	// pinDirReady is set once netnsDir is a shared mount point, so
	// concurrent creations do not each stack a bind mount on it.
	pinDirReady bool
}

var _ driver.Driver = (*Driver)(nil)

// Client exposes the containerd client to tests that inspect what the
// driver made.
func (d *Driver) Client() *client.Client { return d.client }

// Address is the socket the driver is connected to.
func (d *Driver) Address() string { return d.address }

// Info reports containerd's address, namespace and version.
func (d *Driver) Info(ctx context.Context) (driver.BackendInfo, error) {
	v, err := d.client.Version(ctx)
	if err != nil {
		return driver.BackendInfo{}, fmt.Errorf("containerd version at %s: %w", d.address, err)
	}
	return driver.BackendInfo{Name: "containerd", Address: d.address, Namespace: d.namespace,
		Version: v.Version, Revision: v.Revision}, nil
}

// Namespace is the containerd namespace the driver works in.
func (d *Driver) Namespace() string { return d.namespace }

// withNS returns ctx scoped to the driver's containerd namespace.
func (d *Driver) withNS(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, d.namespace)
}

// Create makes the container (on a fresh read-write snapshot of the image,
// which the spec may mount read-only) and its task, without starting it.
func (d *Driver) Create(ctx context.Context, req driver.CreateRequest) (_ driver.Sandbox, retErr error) {
	ctx = d.withNS(ctx)
	if err := checkNetwork(req); err != nil {
		return nil, err
	}
	chain, err := d.chainID(ctx, req.Image)
	if err != nil {
		return nil, err
	}
	// Until the container references the snapshot, only a lease keeps
	// containerd's garbage collector from removing it.
	ctx, releaseLease, err := d.client.WithLease(ctx)
	if err != nil {
		return nil, fmt.Errorf("create sandbox %s: lease: %w", req.ID, err)
	}
	defer func() {
		cleanup(ctx, d.log, "release lease", releaseLease)
	}()
	snapKey := req.ID
	sn := d.client.SnapshotService(snapshotter)
	var taskOpts []client.NewTaskOpts
	if writableRoot(req.Spec) {
		rootfs, err := d.tmpfsRoot(ctx, req.ID, snapKey, chain, upperSize(req.Spec))
		if err != nil {
			return nil, err
		}
		taskOpts = append(taskOpts, client.WithRootFS(rootfs))
	} else if _, err := sn.Prepare(ctx, snapKey, chain); err != nil {
		return nil, fmt.Errorf("prepare snapshot for %s: %w", req.ID, err)
	}
	defer func() {
		if retErr != nil {
			cleanup(ctx, d.log, "remove snapshot", func(ctx context.Context) error { return sn.Remove(ctx, snapKey) })
			cleanup(ctx, d.log, "remove writable root", func(context.Context) error { return removeUpper(req.ID) })
		}
	}()

	spec := req.Spec
	if spec.Root == nil || spec.Root.Path == "" {
		return nil, api.InvalidArgumentf("create %s: spec has no root", req.ID)
	}
	if spec.Linux != nil && spec.Linux.CgroupsPath == "" {
		spec.Linux.CgroupsPath = "/isol8/" + req.ID
	}
	ctr, err := d.client.NewContainer(ctx, req.ID,
		client.WithImageName(req.Image),
		client.WithSnapshotter(snapshotter),
		client.WithSnapshot(snapKey),
		client.WithRuntime(runtimeName, &options.Options{BinaryName: d.runtimeBinary}),
		client.WithSpec(spec),
		client.WithContainerLabels(req.Labels),
	)
	if err != nil {
		return nil, fmt.Errorf("create container %s: %w", req.ID, err)
	}
	defer func() {
		if retErr != nil {
			// A cancelled NewTask may still have made the task on the
			// server side; removeContainer deletes a task if there is one.
			cleanup(ctx, d.log, "delete container", func(ctx context.Context) error { return removeContainer(ctx, ctr) })
		}
	}()

	fifos, err := newFIFOSet(req.ID)
	if err != nil {
		return nil, fmt.Errorf("create fifos for %s: %w", req.ID, err)
	}
	var dio *cio.DirectIO
	task, err := ctr.NewTask(ctx, func(string) (cio.IO, error) {
		// Opening the FIFOs blocks until the shim opens its ends, so it
		// happens here, while the task is being created.
		var err error
		dio, err = cio.NewDirectIO(ctx, fifos)
		return dio, err
	}, taskOpts...)
	if err != nil {
		if dio != nil {
			dio.Close()
		}
		_ = fifos.Close()
		return nil, fmt.Errorf("create task %s: %w", req.ID, err)
	}
	netns, err := d.attachedNetNS(req, task)
	if err != nil {
		dio.Cancel()
		_ = dio.Close()
		return nil, err
	}
	return &sandbox{d: d, id: req.ID, ctr: ctr, task: task, io: dio, netns: netns}, nil
}

// checkNetwork refuses a network attachment that contradicts the spec or
// names no network namespace, before anything is made.
func checkNetwork(req driver.CreateRequest) error {
	if err := req.Network.Check(req.Spec); err != nil {
		return fmt.Errorf("create sandbox %s: %w", req.ID, err)
	}
	if req.Network.Mode != driver.NetworkJoin {
		return nil
	}
	if err := checkNetNS(req.Network.Path); err != nil {
		return fmt.Errorf("create sandbox %s: %w", req.ID, err)
	}
	if p := usernsPath(req.Spec); p != "" {
		if err := checkNetNSOwner(req.Network.Path, p); err != nil {
			return fmt.Errorf("create sandbox %s: %w", req.ID, err)
		}
	}
	return nil
}

// usernsPath is the user namespace the spec joins by path, if any.
func usernsPath(spec *specs.Spec) string {
	if spec.Linux == nil {
		return ""
	}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.UserNamespace {
			return ns.Path
		}
	}
	return ""
}

// attachedNetNS returns the path of the network namespace a created task
// runs in, as its sandbox reports it: the joined path, or a pin of the
// fresh namespace the runtime made for the task's (not yet started) init.
func (d *Driver) attachedNetNS(req driver.CreateRequest, task client.Task) (string, error) {
	switch req.Network.Mode {
	case driver.NetworkJoin:
		return req.Network.Path, nil
	case driver.NetworkFresh:
		if err := d.readyPinDir(); err != nil {
			return "", err
		}
		return pinNetNS(req.ID, task.Pid())
	}
	return "", nil
}

// readyPinDir makes netnsDir a shared mount point, once per driver.
func (d *Driver) readyPinDir() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pinDirReady {
		return nil
	}
	if err := sharedDir(netnsDir); err != nil {
		return err
	}
	d.pinDirReady = true
	return nil
}

// chainID resolves (and caches) the snapshot parent of an image's rootfs.
func (d *Driver) chainID(ctx context.Context, name string) (string, error) {
	d.mu.Lock()
	chain, ok := d.chains[name]
	d.mu.Unlock()
	if ok {
		return chain, nil
	}
	img, err := d.client.GetImage(ctx, name)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", name, err)
	}
	diffIDs, err := img.RootFS(ctx)
	if err != nil {
		return "", fmt.Errorf("image %s rootfs: %w", name, err)
	}
	unpacked, err := img.IsUnpacked(ctx, snapshotter)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", name, err)
	}
	if !unpacked {
		if err := img.Unpack(ctx, snapshotter); err != nil {
			return "", fmt.Errorf("unpack image %s: %w", name, err)
		}
	}
	chain = identity.ChainID(diffIDs).String()
	d.mu.Lock()
	d.chains[name] = chain
	d.mu.Unlock()
	return chain, nil
}

// forgetImage drops cached knowledge of an image (after an import or a
// removal).
func (d *Driver) forgetImage(name string) {
	d.mu.Lock()
	delete(d.chains, name)
	d.mu.Unlock()
}

// List returns the ids of containers carrying all labels (for tests and
// tools; the engine uses ListSandboxes).
func (d *Driver) List(ctx context.Context, labels map[string]string) ([]string, error) {
	infos, err := d.ListSandboxes(ctx, labels)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(infos))
	for i, c := range infos {
		ids[i] = c.ID
	}
	return ids, nil
}

// ListSandboxes returns containers carrying all labels, with their state.
func (d *Driver) ListSandboxes(ctx context.Context, labels map[string]string) ([]driver.SandboxInfo, error) {
	ctx = d.withNS(ctx)
	ctrs, err := d.client.ContainerService().List(ctx, labelFilter(labels)...)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]driver.SandboxInfo, 0, len(ctrs))
	for _, c := range ctrs {
		info := driver.SandboxInfo{ID: c.ID, Image: c.Image, Created: c.CreatedAt, Labels: c.Labels}
		if t, err := d.client.TaskService().Get(ctx, &tasksapi.GetRequest{ContainerID: c.ID}); err == nil && t.Process != nil {
			info.Running = t.Process.Status == apitask.Status_RUNNING
		}
		out = append(out, info)
	}
	return out, nil
}

// Remove kills and deletes a container, its task and snapshot. A missing
// container is not an error.
func (d *Driver) Remove(ctx context.Context, id string) error {
	ctx = d.withNS(ctx)
	ctr, err := d.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load container %s: %w", id, err)
	}
	return removeContainer(ctx, ctr)
}

func removeContainer(ctx context.Context, ctr client.Container) error {
	task, err := ctr.Task(ctx, nil)
	switch {
	case err == nil:
		if _, err := task.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("delete task %s: %w", ctr.ID(), err)
		}
	case !errdefs.IsNotFound(err):
		return fmt.Errorf("load task %s: %w", ctr.ID(), err)
	}
	if err := ctr.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete container %s: %w", ctr.ID(), err)
	}
	if err := removeUpper(ctr.ID()); err != nil {
		return err
	}
	if err := unpinNetNS(ctr.ID()); err != nil {
		return err
	}
	// FIFOs of a container created by another process are ours to remove.
	if err := os.RemoveAll(FIFOSetDir(ctr.ID())); err != nil {
		return fmt.Errorf("remove fifos of %s: %w", ctr.ID(), err)
	}
	return nil
}

// Close closes the client connection (a private containerd keeps running
// for later invocations).
func (d *Driver) Close() error { return d.client.Close() }

// sandbox is one created container and task.
type sandbox struct {
	d    *Driver
	id   string
	ctr  client.Container
	task client.Task
	io   *cio.DirectIO
	// netns is the network namespace path the sandbox reports.
	netns string
}

func (s *sandbox) ID() string { return s.id }

func (s *sandbox) NetNSPath() string { return s.netns }

func (s *sandbox) Start(ctx context.Context) (driver.Stdio, error) {
	if err := s.task.Start(s.d.withNS(ctx)); err != nil {
		return driver.Stdio{}, fmt.Errorf("start task %s: %w", s.id, err)
	}
	return driver.Stdio{Stdin: s.io.Stdin, Stdout: s.io.Stdout, Stderr: s.io.Stderr}, nil
}

func (s *sandbox) Delete(ctx context.Context) error {
	ctx = s.d.withNS(ctx)
	var errs []error
	if _, err := s.task.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("delete task %s: %w", s.id, err))
	}
	if s.io != nil {
		s.io.Cancel()
		_ = s.io.Close()
	}
	if err := s.ctr.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("delete container %s: %w", s.id, err))
	}
	if err := removeUpper(s.id); err != nil {
		errs = append(errs, err)
	}
	if err := unpinNetNS(s.id); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// cleanup runs an undo step on a context detached from a possibly cancelled
// caller, with its own deadline, and logs (never returns) its failure.
func cleanup(ctx context.Context, log *slog.Logger, what string, f func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := f(ctx); err != nil && !errdefs.IsNotFound(err) {
		log.Warn("cleanup failed", "step", what, "error", err)
	}
}

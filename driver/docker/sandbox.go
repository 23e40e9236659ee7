package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/isol8/isol8/api"
	"github.com/isol8/isol8/driver"
)

// Create makes the container, attaches to its stdio and starts it: Docker
// makes a container's namespaces and cgroup only when it starts, and the
// sandbox's network namespace path must be known when Create returns.
// Attaching first means none of the init's output is missed; until Start
// hands out the streams, the attach connection holds it back.
func (d *Driver) Create(ctx context.Context, req driver.CreateRequest) (_ driver.Sandbox, retErr error) {
	if err := req.Network.Check(req.Spec); err != nil {
		return nil, fmt.Errorf("create sandbox %s: %w", req.ID, err)
	}
	opts, err := project(req)
	if err != nil {
		return nil, err
	}
	opts.Config.Labels = maps.Clone(req.Labels)
	if opts.Config.Labels == nil {
		opts.Config.Labels = map[string]string{}
	}
	opts.Config.Labels[LabelSandbox] = "true"
	created, err := d.client.ContainerCreate(ctx, opts)
	if err != nil {
		if opts.HostConfig.StorageOpt != nil && strings.Contains(err.Error(), "storage-opt") {
			return nil, api.FailedPreconditionf("create sandbox %s: a writable root filesystem needs a size quota, which this Docker daemon cannot set (overlay2 on xfs with pquota only): keep the root read-only (%v)", req.ID, err)
		}
		return nil, fmt.Errorf("create container %s: %w", req.ID, err)
	}
	for _, w := range created.Warnings {
		d.log.Debug("docker create warning", "sandbox", req.ID, "warning", w)
	}
	s := &sandbox{d: d, id: req.ID, dockerID: created.ID}
	defer func() {
		if retErr != nil {
			cleanup(ctx, d.log, "remove container", s.Delete)
		}
	}()
	att, err := d.client.ContainerAttach(ctx, created.ID, client.ContainerAttachOptions{
		Stream: true, Stdin: true, Stdout: true, Stderr: true,
	})
	if err != nil {
		return nil, fmt.Errorf("attach container %s: %w", req.ID, err)
	}
	s.attach(att.HijackedResponse)
	if _, err := d.client.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return nil, fmt.Errorf("start container %s: %w", req.ID, err)
	}
	if req.Network.Mode == driver.NetworkFresh {
		pid, err := d.initPid(ctx, created.ID)
		if err != nil {
			return nil, fmt.Errorf("create sandbox %s: %w", req.ID, err)
		}
		s.netns = "/proc/" + strconv.Itoa(pid) + "/ns/net"
	}
	return s, nil
}

// initPid is the host pid of a running container's init.
func (d *Driver) initPid(ctx context.Context, id string) (int, error) {
	res, err := d.client.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return 0, fmt.Errorf("inspect container: %w", err)
	}
	st := res.Container.State
	if st == nil || !st.Running || st.Pid <= 0 {
		return 0, fmt.Errorf("container %s is not running", id)
	}
	return st.Pid, nil
}

// LabelSandbox marks the containers the driver made. Docker copies an
// image's labels onto every container made from it, so a container someone
// else ran from an isol8 image carries isol8's image labels too; only this
// one, never an image label, tells isol8's sandboxes apart.
const LabelSandbox = "isol8.docker.sandbox"

// ListSandboxes returns the sandboxes carrying all labels.
func (d *Driver) ListSandboxes(ctx context.Context, labels map[string]string) ([]driver.SandboxInfo, error) {
	f := client.Filters{}
	f.Add("label", LabelSandbox+"=true")
	for k, v := range labels {
		f.Add("label", k+"="+v)
	}
	res, err := d.client.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]driver.SandboxInfo, 0, len(res.Items))
	for _, c := range res.Items {
		info := driver.SandboxInfo{ID: c.ID, Image: c.Image, Running: c.State == "running",
			Created: time.Unix(c.Created, 0), Labels: c.Labels}
		if len(c.Names) > 0 {
			info.ID = strings.TrimPrefix(c.Names[0], "/")
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Remove kills and deletes a container (by name or id). A missing container
// is not an error.
func (d *Driver) Remove(ctx context.Context, id string) error {
	_, err := d.client.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	return nil
}

// Prune has nothing to do: Docker keeps nothing for a removed container.
func (d *Driver) Prune(context.Context) (int, error) { return 0, nil }

// sandbox is one created, attached and started container.
type sandbox struct {
	d        *Driver
	id       string
	dockerID string
	netns    string

	mu    sync.Mutex
	conn  *client.HijackedResponse
	stdio driver.Stdio
	// readers are the pipe ends of stdout and stderr; closing them ends
	// the demultiplexer even when nobody reads.
	readers []*io.PipeReader
}

func (s *sandbox) ID() string { return s.id }

// NetNSPath is /proc/<init pid>/ns/net of a sandbox made with
// driver.FreshNetwork, valid while the init runs.
func (s *sandbox) NetNSPath() string { return s.netns }

// CgroupPath is where Docker put the sandbox's cgroup (cgroupfs driver).
func (s *sandbox) CgroupPath() string { return CgroupParent + "/" + s.dockerID }

// attach splits the multiplexed attach stream into the init's stdout and
// stderr; both end when the container's output ends (its init exited) or
// the connection closes.
func (s *sandbox) attach(h client.HijackedResponse) {
	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	go func() {
		_, err := stdcopy.StdCopy(outW, errW, h.Reader)
		outW.CloseWithError(err)
		errW.CloseWithError(err)
	}()
	s.mu.Lock()
	s.conn = &h
	s.stdio = driver.Stdio{Stdin: stdinWriter{h: &h}, Stdout: outR, Stderr: errR}
	s.readers = []*io.PipeReader{outR, errR}
	s.mu.Unlock()
}

// Start hands out the init's stdio (the container already runs).
func (s *sandbox) Start(context.Context) (driver.Stdio, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return driver.Stdio{}, fmt.Errorf("start sandbox %s: not attached", s.id)
	}
	return s.stdio, nil
}

// Delete removes the container (killing what runs) and closes the attach
// connection.
func (s *sandbox) Delete(ctx context.Context) error {
	var errs []error
	if _, err := s.d.client.ContainerRemove(ctx, s.dockerID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !errdefs.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("remove container %s: %w", s.id, err))
	}
	s.mu.Lock()
	if s.conn != nil {
		s.conn.Close()
	}
	for _, r := range s.readers {
		_ = r.Close()
	}
	s.mu.Unlock()
	return errors.Join(errs...)
}

// stdinWriter writes to the attach connection; Close half-closes it, which
// closes the init's stdin.
type stdinWriter struct{ h *client.HijackedResponse }

func (w stdinWriter) Write(p []byte) (int, error) { return w.h.Conn.Write(p) }
func (w stdinWriter) Close() error                { return w.h.CloseWrite() }

// Package driver defines the small interface the engine uses to run
// sandboxes on a container backend (containerd or Docker). A driver creates a
// container from an image and a runtime spec the engine wrote, starts its
// init (isol8-init) with stdio pipes, and removes it again. Everything a
// sandbox does beyond that goes through the agent protocol on those pipes.
//
// Drivers translate backend errors at their edge into containerd/errdefs
// classes so callers can branch with errdefs.IsNotFound and friends.
package driver

import (
	"context"
	"io"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Labels every isol8 container and image carries.
const (
	LabelManaged = "isol8.managed"
	LabelRuntime = "isol8.runtime"
	// LabelPID records the process that created a sandbox, so orphans of a
	// crashed process can be told apart from sandboxes in use.
	LabelPID = "isol8.pid"
	// LabelPIDStart is that process's start time (clock ticks after boot),
	// so a recycled pid is not taken for the creator.
	LabelPIDStart = "isol8.pid.start"
)

// CreateRequest describes one sandbox.
type CreateRequest struct {
	ID    string
	Image string
	// Spec is the complete runtime spec; the driver fills in only what is
	// backend specific (the rootfs path, cgroup parent).
	Spec   *specs.Spec
	Labels map[string]string
}

// Driver creates and removes sandboxes.
type Driver interface {
	// Create makes the container and its task but does not start the init.
	Create(ctx context.Context, req CreateRequest) (Sandbox, error)
	// List returns the ids of containers carrying all the given labels.
	List(ctx context.Context, labels map[string]string) ([]string, error)
	// Remove kills and deletes a container and everything it holds (task,
	// snapshot). Removing a missing container is not an error.
	Remove(ctx context.Context, id string) error
	// ImageExists reports whether an image with this name is present.
	ImageExists(ctx context.Context, name string) (bool, error)
	Close() error
}

// Stdio are the init's standard streams as seen from the host.
type Stdio struct {
	Stdin  io.WriteCloser
	Stdout io.Reader
	Stderr io.Reader
}

// Sandbox is one created container. The engine learns that a sandbox's
// init died from its stdout closing, and ends a sandbox with Delete (which
// kills what still runs), so no Kill or Wait is needed.
type Sandbox interface {
	ID() string
	// Start runs the init and returns its stdio.
	Start(ctx context.Context) (Stdio, error)
	// Delete removes the container, its task and its snapshot.
	Delete(ctx context.Context) error
}

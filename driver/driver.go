// Package driver defines the small interface the engine uses to run
// sandboxes on a container backend (containerd or Docker). A driver creates a
// container from an image and a runtime spec the engine wrote, starts its
// init (isol8-init) with stdio pipes, and removes it again. Everything a
// sandbox does beyond that goes through the agent protocol on those pipes.
// A driver also imports the images the image builder writes as OCI image
// layouts, and lists and removes images and sandboxes by label.
//
// Drivers translate backend errors at their edge into containerd/errdefs
// classes so callers can branch with errdefs.IsNotFound and friends.
package driver

import (
	"context"
	"io"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isol8/isol8/api"
)

// Labels every isol8 container and image carries (defined in package api).
const (
	LabelManaged  = api.LabelManaged
	LabelRuntime  = api.LabelRuntime
	LabelPID      = api.LabelPID
	LabelPIDStart = api.LabelPIDStart
)

// CreateRequest describes one sandbox.
type CreateRequest struct {
	ID    string
	Image string
	// Spec is the complete runtime spec; the driver fills in only what is
	// backend specific (the rootfs path, cgroup parent).
	Spec   *specs.Spec
	Labels map[string]string
	// Network is the network namespace the sandbox runs in, as far as
	// the caller needs to reach into it; it must agree with Spec (see
	// NetworkAttachment.Check). The zero value leaves it to the spec.
	Network NetworkAttachment
}

// Driver is everything the engine needs from a container backend: sandboxes
// and the images they run. The engine knows no backend but through it; the
// process that wires the engine (cmd/isol8, isol8.New, tests) picks one.
type Driver interface {
	Sandboxes
	Images
	// Info names the backend and its version, for the user (`isol8 setup`)
	// and for telling them where a kept sandbox lives.
	Info(ctx context.Context) (BackendInfo, error)
	Close() error
}

// BackendInfo describes the backend a driver talks to.
type BackendInfo struct {
	Name      string // "containerd"
	Address   string // where it listens
	Namespace string // the backend namespace isol8's objects live in
	Version   string
	Revision  string
}

// Sandboxes creates, lists and removes sandboxes.
type Sandboxes interface {
	// Create makes the container and its task but does not start the init.
	Create(ctx context.Context, req CreateRequest) (Sandbox, error)
	// ListSandboxes returns the sandboxes carrying all the given labels.
	ListSandboxes(ctx context.Context, labels map[string]string) ([]SandboxInfo, error)
	// Remove kills and deletes a container and everything it holds (task,
	// snapshot, stdio). Removing a missing container is not an error.
	Remove(ctx context.Context, id string) error
	// Prune removes what the backend keeps for sandboxes that no longer
	// exist (containerd: the FIFO directories of processes that died before
	// removing their sandboxes) and returns how many items it removed.
	Prune(ctx context.Context) (int, error)
}

// Images imports, inspects, lists and removes images. Images arrive as OCI
// image layouts (a directory with oci-layout, index.json and
// blobs/sha256/...), which any backend can import, so the image builder
// knows no backend.
type Images interface {
	// ImageInfo describes an image; a missing image is an
	// errdefs.ErrNotFound error.
	ImageInfo(ctx context.Context, name string) (ImageInfo, error)
	// ImportImage imports the manifest of the layout in dir whose
	// org.opencontainers.image.ref.name annotation is name (or the only
	// manifest of the layout) as image name with labels, replacing an image
	// of that name, and readies it to run. The layout may leave out the
	// blobs of layers the backend already holds (a custom image names its
	// base image's layers, from ImageInfo.LayerBlobs, and carries only its
	// own).
	ImportImage(ctx context.Context, dir, name string, labels map[string]string) error
	// RemoveImage deletes an image; blobs and unpacked layers no other
	// image uses are released. A missing image is an errdefs.ErrNotFound
	// error.
	RemoveImage(ctx context.Context, name string) error
	// ListImages returns the names of the images carrying all the given
	// labels, sorted.
	ListImages(ctx context.Context, labels map[string]string) ([]string, error)
}

// LayerExporter is implemented by backends that share no content store
// with the image builder and so report no ImageInfo.LayerBlobs (Docker):
// ExportLayers writes the layers of image name as uncompressed layer
// blobs into the OCI image layout at layoutDir (blobs/sha256/<hex>) and
// returns their descriptors, base first. A layer's digest is then its diff
// ID, so an image built on top keeps the base's diff IDs.
type LayerExporter interface {
	ExportLayers(ctx context.Context, name, layoutDir string) ([]ocispec.Descriptor, error)
}

// ImageInfo describes one image.
type ImageInfo struct {
	Name string
	// ID is the image id as users know it: the hex digest of the image's
	// config.
	ID     string
	Labels map[string]string
	// Layers are the diff IDs of the image's layers (digests of the
	// uncompressed tars), base first.
	Layers []string
	// LayerBlobs are the manifest's layer descriptors, base first, so an
	// image can be layered on top of this one: a layout that names them
	// without holding their blobs imports on a backend that has them.
	LayerBlobs []ocispec.Descriptor
	// Size is the bytes of the image's blobs (config and layers as stored).
	Size int64
	// Created is when the backend recorded the image.
	Created time.Time
}

// SandboxInfo describes one sandbox for listings.
type SandboxInfo struct {
	ID      string
	Image   string
	Running bool
	Created time.Time
	Labels  map[string]string
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
	// NetNSPath is the network namespace the sandbox runs in: the path
	// it joined (NetworkJoin) or one the driver pinned for the fresh
	// namespace (NetworkFresh), valid until Delete (or Remove). Empty with
	// NetworkFromSpec. The caller may enter it with setns, e.g. to serve
	// on the sandbox's loopback.
	NetNSPath() string
	// Start runs the init and returns its stdio.
	Start(ctx context.Context) (Stdio, error)
	// Delete removes the container, its task and its snapshot.
	Delete(ctx context.Context) error
}

// Package engine orchestrates sandboxes: it validates requests, resolves
// runtimes and images, writes the runtime spec, drives a sandbox's init agent
// and turns what the agent reports into results and events (timeouts, output
// caps, secret masking). It owns no container backend itself: drivers do.
package engine

import (
	"context"
	"errors"
)

// ErrNotImplemented is returned by parts of the engine still being built.
var ErrNotImplemented = errors.New("not implemented")

// Engine runs executions.
type Engine struct {
	opts Options
}

// New validates opts and returns an engine. It does not connect to the
// backend yet: Start (or the first execution) does.
func New(opts Options) (*Engine, error) { return &Engine{opts: opts}, nil }

// Start connects to the backend.
func (e *Engine) Start(ctx context.Context) error { return ErrNotImplemented }

// Stop removes every sandbox the engine holds and closes the backend.
func (e *Engine) Stop(ctx context.Context) error { return nil }

// Execute runs one request to completion.
func (e *Engine) Execute(ctx context.Context, req Request) (*Result, error) {
	return nil, ErrNotImplemented
}

// ExecuteStream runs one request and delivers its events on the returned
// channel, which is closed after the final exit or error event. Cancelling
// ctx kills the program and releases the sandbox.
func (e *Engine) ExecuteStream(ctx context.Context, req Request) (<-chan Event, error) {
	return nil, ErrNotImplemented
}

// SetupOptions control image setup.
type SetupOptions struct {
	Force    bool
	Runtimes []string // empty: all
}

// SetupImages builds (or confirms up to date) the runtime images.
func (e *Engine) SetupImages(ctx context.Context, o SetupOptions) error { return ErrNotImplemented }

// CleanupOptions control Cleanup.
type CleanupOptions struct {
	Images bool
	// DryRun only lists what would be removed.
	DryRun bool
}

// CleanupReport lists what Cleanup found and removed.
type CleanupReport struct {
	Containers    []ContainerInfo
	Images        []string
	Removed       int
	Failed        []string
	ImagesRemoved int
}

// ContainerInfo describes one isol8 container.
type ContainerInfo struct {
	ID      string
	Image   string
	Running bool
	Created string
}

// Cleanup lists, and unless DryRun removes, every isol8-labelled container
// (and image with Images).
func (e *Engine) Cleanup(ctx context.Context, o CleanupOptions) (*CleanupReport, error) {
	return nil, ErrNotImplemented
}

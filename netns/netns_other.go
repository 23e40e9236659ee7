//go:build !linux

package netns

import (
	"context"
	"errors"
	"net"
)

var errNotLinux = errors.New("network namespaces need Linux")

// Do needs Linux.
func Do(path string, fn func() error) error { return errNotLinux }

// LoopbackUp needs Linux.
func LoopbackUp(path string) error { return errNotLinux }

// Listen needs Linux.
func Listen(ctx context.Context, path, addr string) (net.Listener, error) { return nil, errNotLinux }

// Links needs Linux.
func Links(path string) ([]string, error) { return nil, errNotLinux }

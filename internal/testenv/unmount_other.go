//go:build !linux

package testenv

// unmountBelow has nothing to do where no dockerd runs.
func unmountBelow(string) error { return nil }

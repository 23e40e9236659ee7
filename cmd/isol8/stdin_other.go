//go:build !linux

package main

import "os"

// isTerminal is only needed for the stdin prompt; elsewhere isol8 does not
// run sandboxes, so it never prompts.
func isTerminal(*os.File) bool { return false }

//go:build !linux

// Command isol8-init is pid 1 of every isol8 sandbox; it runs only on Linux.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "isol8-init: only Linux is supported")
	os.Exit(1)
}

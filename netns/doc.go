// Package netns reaches into sandboxes' network namespaces from the engine
// process: it brings a namespace's loopback up and opens listening sockets
// inside it, so the engine can serve (the filtered network's proxy) on a
// sandbox's own 127.0.0.1 while everything else it does stays in the host's
// namespace.
//
// Entering a namespace changes the calling OS thread only. Every entry
// happens on a locked thread that switches back before it is unlocked; when
// switching back fails the thread stays locked, and the Go runtime ends a
// goroutine's locked thread when the goroutine returns instead of reusing it
// in the wrong namespace.
//
// The namespaces themselves are the container driver's: it makes a fresh
// one per sandbox, pins it while the sandbox exists and removes the pin with
// the sandbox (and orphaned pins at cleanup). A listening socket opened here
// belongs to the engine process, so it cannot outlive it: a crashed engine
// leaves no listener behind, only the pins the driver's cleanup removes.
package netns

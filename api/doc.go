// Package api holds what isol8's public API shares between the library,
// the server and clients: error classes today, and the request, result and
// event types as they move here from package engine. It imports only the
// standard library, so a client built on it stays light; a dependency test
// keeps it that way.
package api

// Version is the isol8 release, reported by the CLI, the library and (later)
// the server.
const Version = "0.1.0"

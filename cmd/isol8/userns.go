package main

import (
	"github.com/isol8/isol8/config"
	"github.com/isol8/isol8/engine"
)

// userNSOptions turns the "security.userns" key into the engine's option
// (config validated the ranges, so the conversions cannot truncate).
func userNSOptions(u *config.UserNS) *engine.UserNSOptions {
	e := u.Effective()
	return &engine.UserNSOptions{Base: uint32(e.Base), Size: uint32(e.Size), Count: e.Count, StateDir: e.StateDir}
}

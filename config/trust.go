package config

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"syscall"

	"github.com/isol8/isol8/api"
)

// Origin says how a config file was found, which decides how far it may
// weaken the sandbox.
type Origin int

const (
	// OriginExplicit is a file the user named (`--config PATH`): trusted.
	OriginExplicit Origin = iota
	// OriginHome is ~/.isol8/config.json: trusted when owned by root or the
	// invoking user and not writable by group or others.
	OriginHome
	// OriginWorkdir is ./isol8.config.json: never trusted with
	// sandbox-weakening keys. It travels with whatever directory the user
	// happens to stand in, such as a cloned repository, and the same user
	// owns that clone, so ownership proves nothing about who wrote it.
	OriginWorkdir
)

// Weakening returns the dotted keys whose values in c weaken the sandbox or
// choose what runs on the host as root: another containerd socket or OCI
// runtime binary, a seccomp mode other than strict, a custom profile path,
// the host id range of sandboxes, host networking, a writable root
// filesystem, an SSRF guard open to internal addresses, the directory the
// audit log is written to and a script run after each record, registry
// images to replace the runtime images with. A key set to its built-in
// default is not listed.
func (c *Config) Weakening() []string {
	d := Defaults()
	var keys []string
	add := func(cond bool, key string) {
		if cond {
			keys = append(keys, key)
		}
	}
	add(c.Containerd.Address != d.Containerd.Address, "containerd.address")
	add(c.Containerd.Runtime != d.Containerd.Runtime, "containerd.runtime")
	// Docker runs sandboxes without a user namespace of their own.
	add(c.Driver != "" && c.Driver != "containerd", "driver")
	add(c.Security.Seccomp != d.Security.Seccomp, "security.seccomp")
	add(c.Security.CustomProfilePath != d.Security.CustomProfilePath, "security.customProfilePath")
	// The host ids sandboxes run as, and where their allocation is kept.
	add(c.Security.UserNS.Effective() != (*UserNS)(nil).Effective(), "security.userns")
	add(c.Defaults.Network == "host", "defaults.network")
	add(c.Network.AllowPrivateDestinations, "network.allowPrivateDestinations")
	add(!c.Defaults.ReadonlyRootFs, "defaults.readonlyRootFs")
	// Where isol8 (often root) writes the audit log, and a program it
	// would run after each record.
	add(c.Audit.LogDir != d.Audit.LogDir, "audit.logDir")
	add(c.Audit.PostLogScript != d.Audit.PostLogScript, "audit.postLogScript")
	// Where the runtime images every user runs come from.
	add(len(c.Images.Registry) > 0, "images.registry")
	// host sends every run (its code and API key) to another machine.
	add(c.Host != d.Host, "host")
	return keys
}

// checkTrust refuses a file that sets a sandbox-weakening key unless its
// origin and ownership allow it. uid is the invoking user.
func checkTrust(c *Config, path string, st fs.FileInfo, origin Origin, uid int) error {
	weak := c.Weakening()
	if origin == OriginExplicit || len(weak) == 0 {
		return nil
	}
	if origin == OriginWorkdir {
		return untrusted(path, weak, "a config file found in the working directory cannot set it; "+
			"pass the file with --config PATH or move it to ~/.isol8/config.json")
	}
	owner, ok := fileOwner(st)
	mode := st.Mode().Perm()
	if ok && (owner == 0 || owner == uint32(uid)) && mode&0o022 == 0 {
		return nil
	}
	why := fmt.Sprintf("mode %04o", mode)
	if ok {
		why = fmt.Sprintf("owner uid %d, %s", owner, why)
	}
	return untrusted(path, weak, fmt.Sprintf("it is honoured only from a file owned by root or uid %d "+
		"that group and others cannot write (this file: %s); fix the file or pass it with --config PATH", uid, why))
}

func untrusted(path string, keys []string, reason string) error {
	quoted := make([]string, len(keys))
	for i, k := range keys {
		quoted[i] = strconv.Quote(k)
	}
	verb := "weakens"
	if len(keys) > 1 {
		verb = "weaken"
	}
	return api.InvalidArgumentf(
		"Untrusted config file %s: %s %s the sandbox; %s", path, strings.Join(quoted, ", "), verb, reason)
}

func fileOwner(st fs.FileInfo) (uint32, bool) {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return sys.Uid, true
	}
	return 0, false
}

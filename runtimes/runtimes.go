// Package runtimes owns the per-language adapters of isol8:
// image name, default file extension, inline/file/cmd argv, package-install
// argv and environment, the base environment and PATH of sandboxed
// processes, and the checks on request fields that feed them (workdir,
// environment names, package names). It is pure: it runs nothing, touches
// no file or network and imports no other isol8 package. Every argv it
// returns is executed directly (no host shell); strings it embeds in a
// `bash -c`/`sh -c` script are single-quoted.
package runtimes

import (
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/isol8/isol8/agent"
	"github.com/isol8/isol8/api"
)

// Runtime names.
const (
	Python = "python"
	Node   = "node"
	Bun    = "bun"
	Bash   = "bash"
	Deno   = "deno"
	Agent  = "agent"
)

// Sandbox paths.
const (
	// SandboxDir is the user's home and the default working directory;
	// TmpDir the noexec scratch tmpfs. Defined once, in the agent protocol.
	SandboxDir = agent.SandboxDir
	TmpDir     = agent.TmpDir
)

// Runtime is one language adapter.
type Runtime struct {
	// Name is the registry name ("python", ...).
	Name string
	// Image is the base image reference ("isol8:python", ...).
	Image string
	// Ext is the default code-file extension, with the dot (".py", ...).
	Ext string
}

// registry is in the contract order: python, node, bun, bash, deno, agent.
var registry = [...]Runtime{
	{Name: Python, Image: "isol8:python", Ext: ".py"},
	{Name: Node, Image: "isol8:node", Ext: ".mjs"},
	{Name: Bun, Image: "isol8:bun", Ext: ".ts"},
	{Name: Bash, Image: "isol8:bash", Ext: ".sh"},
	{Name: Deno, Image: "isol8:deno", Ext: ".mts"},
	{Name: Agent, Image: "isol8:agent", Ext: ".txt"},
}

// Names returns the runtime names in registry order.
func Names() []string {
	names := make([]string, len(registry))
	for i, r := range registry {
		names[i] = r.Name
	}
	return names
}

// unbuilt are runtimes of the contract whose image this build does not
// make yet; they are left out of Available.
var unbuilt = map[string]bool{}

// Built reports whether name is a runtime this build can run.
func Built(name string) bool {
	_, err := Get(name)
	return err == nil && !unbuilt[name]
}

// Available returns the names of the runtimes this build can run, in
// registry order.
func Available() []string {
	var names []string
	for _, r := range registry {
		if !unbuilt[r.Name] {
			names = append(names, r.Name)
		}
	}
	return names
}

// All returns a copy of every adapter in registry order.
func All() []Runtime { return slices.Clone(registry[:]) }

// Get returns the adapter called name. An unknown name yields the
// invalid-argument error
// `Unknown runtime: "<name>". Available: python, node, bun, bash, deno, agent`.
func Get(name string) (*Runtime, error) {
	for _, r := range registry {
		if r.Name == name {
			return &r, nil
		}
	}
	return nil, api.InvalidArgumentf(
		"Unknown runtime: %q. Available: %s", name, strings.Join(Names(), ", "))
}

// extensions maps a detected extension (without the dot) to its runtime.
var extensions = map[string]string{
	"py":  Python,
	"js":  Node,
	"cjs": Node,
	"mjs": Node,
	"ts":  Bun,
	"mts": Deno,
	"sh":  Bash,
	"txt": Agent,
}

// Detect returns the runtime for a file name or URL path from the text
// after its last "." (case-sensitive, like the reference). Failure yields
// the invalid-argument error
// `Cannot detect runtime for "<name>". Known extensions: .py, .mjs, .js, .cjs, .ts, .sh, .mts, .txt`.
func Detect(filename string) (string, error) {
	if i := strings.LastIndexByte(filename, '.'); i >= 0 {
		if rt, ok := extensions[filename[i+1:]]; ok {
			return rt, nil
		}
	}
	return "", api.InvalidArgumentf(
		"Cannot detect runtime for %q. Known extensions: .py, .mjs, .js, .cjs, .ts, .sh, .mts, .txt",
		filename)
}

// AgentSystemPrompt is appended to every agent invocation.
const AgentSystemPrompt = "You are running inside an isol8 sandbox — a Docker container with strict " +
	"resource limits and controlled network access. isol8 exists to execute untrusted code " +
	"safely: outbound network is filtered to a whitelist, the filesystem is ephemeral, and some " +
	"system calls are restricted. Work within these constraints: do not assume open internet " +
	"access, do not rely on persistent state across runs, and do not attempt to escape the sandbox."

// InlineArgv returns the command that runs code without writing a file:
// python3 -c, node -e, bun -e, bash -c, and for agent the pi command of
// AgentArgv with no extra flags. Deno has no inline form: ok is false and
// the caller must write a file and use FileArgv.
func (r *Runtime) InlineArgv(code string) (argv []string, ok bool) {
	switch r.Name {
	case Python:
		return []string{"python3", "-c", code}, true
	case Node:
		return []string{"node", "-e", code}, true
	case Bun:
		return []string{"bun", "-e", code}, true
	case Bash:
		return []string{"bash", "-c", code}, true
	case Agent:
		return AgentArgv(code, ""), true
	}
	return nil, false
}

// FileArgv returns the command that runs the code file at path (a path
// inside the sandbox). The agent takes its prompt inline, not from a file
// (use Argv or AgentArgv); for it FileArgv reads the prompt from path.
func (r *Runtime) FileArgv(path string) []string {
	switch r.Name {
	case Python:
		return []string{"python3", path}
	case Node:
		return []string{"node", path}
	case Bun:
		return []string{"bun", "run", path}
	case Deno:
		return []string{"deno", "run",
			"--allow-read=" + SandboxDir + "," + TmpDir,
			"--allow-write=" + SandboxDir + "," + TmpDir,
			"--allow-env", "--allow-net", path}
	case Bash:
		return []string{"bash", path}
	case Agent:
		return []string{"bash", "-c", agentPrefix("") + `-p "$(cat ` + ShellQuote(path) + `)"`}
	}
	return nil
}

// Argv is the engine's single entry point for a code run (the reference's
// getCommand with options): the agent always gets AgentArgv(code,
// agentFlags) and ignores path; otherwise a non-empty path gives FileArgv,
// and an empty path the inline form. ok is false when the runtime needs a
// file (deno) and path is empty.
func (r *Runtime) Argv(code, path, agentFlags string) (argv []string, ok bool) {
	if r.Name == Agent {
		return AgentArgv(code, agentFlags), true
	}
	if path != "" {
		return r.FileArgv(path), true
	}
	return r.InlineArgv(code)
}

// AgentArgv returns
// ["bash","-c","pi --no-session --append-system-prompt '<SP>' [<flags> ]-p '<prompt>'"].
// The prompt and system prompt are single-quoted (ShellQuote); agentFlags is
// inserted verbatim (it is interpreted by bash inside the sandbox) followed
// by one space, only when non-empty.
func AgentArgv(prompt, agentFlags string) []string {
	return []string{"bash", "-c", agentPrefix(agentFlags) + "-p " + ShellQuote(prompt)}
}

func agentPrefix(agentFlags string) string {
	s := "pi --no-session --append-system-prompt " + ShellQuote(AgentSystemPrompt) + " "
	if agentFlags != "" {
		s += agentFlags + " "
	}
	return s
}

// CmdArgv returns the argv of cmd mode: ["bash","-c",cmd].
func CmdArgv(cmd string) []string { return []string{"bash", "-c", cmd} }

// ShellQuote single-quotes s for POSIX shells; each embedded quote becomes
// close-quote, backslash-quote, open-quote. For example:
//
//	ShellQuote("it's") == `'it'\''s'`
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// setupPath is the PATH of setup scripts and installs.
const setupPath = "/sandbox/.local/bin:/sandbox/.npm-global/bin:/sandbox/.bun-global/bin:" +
	"/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"

// runPath is the PATH of the main run.
const runPath = "/sandbox/.local/bin:/sandbox/.npm-global/bin:/sandbox/.bun-global/bin:" +
	"/usr/local/bin:/usr/bin:/bin"

// SetupPath returns the PATH for setup scripts and package installs.
func SetupPath() string { return setupPath }

// BaseEnv returns the base environment of every sandbox process
// in order, plus HOME=/sandbox. Secrets, request env and
// proxy variables are appended by the caller.
func BaseEnv() []string {
	return []string{
		"PYTHONUNBUFFERED=1",
		"PYTHONUSERBASE=/sandbox/.local",
		"NPM_CONFIG_PREFIX=/sandbox/.npm-global",
		"DENO_DIR=/sandbox/.deno",
		"PATH=" + runPath,
		"NODE_PATH=/usr/local/lib/node_modules:/sandbox/.npm-global/lib/node_modules:/sandbox/node_modules",
		"HOME=" + SandboxDir,
	}
}

// maxWorkdir bounds a resolved working directory (Linux PATH_MAX).
const maxWorkdir = 4096

// ResolveWorkdir resolves w against /sandbox with POSIX rules: "" → /sandbox, "subdir" → /sandbox/subdir,
// "/sandbox/a/../b" → /sandbox/b. The result must be /sandbox or below
// /sandbox/, else the invalid-argument error
// `Working directory must be inside /sandbox`. NUL bytes and results longer
// than 4096 bytes are rejected as well.
func ResolveWorkdir(w string) (string, error) {
	if strings.IndexByte(w, 0) >= 0 {
		return "", api.InvalidArgumentf("Working directory must not contain NUL bytes")
	}
	var p string
	if path.IsAbs(w) {
		p = path.Clean(w)
	} else {
		p = path.Join(SandboxDir, w)
	}
	if p != SandboxDir && !strings.HasPrefix(p, SandboxDir+"/") {
		return "", api.InvalidArgumentf("Working directory must be inside /sandbox")
	}
	if len(p) > maxWorkdir {
		return "", api.InvalidArgumentf("Working directory is too long (%d bytes, max %d)", len(p), maxWorkdir)
	}
	return p, nil
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ValidateEnvName checks an environment variable name against
// ^[A-Za-z_][A-Za-z0-9_]*$; failure is the invalid-argument error
// `Invalid environment variable name: "<name>"`.
func ValidateEnvName(name string) error {
	if !envNameRE.MatchString(name) {
		return api.InvalidArgumentf("Invalid environment variable name: %q", name)
	}
	return nil
}

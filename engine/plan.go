package engine

import (
	"path"
	"sort"
	"strings"
	"time"

	"github.com/isol8/isol8/agent"
	"github.com/isol8/isol8/runtimes"
)

// Limits on what a request may carry; beyond them the request is refused
// with an invalid-argument error before any sandbox exists.
const (
	MaxStdinBytes   = 16 << 20
	MaxFilesBytes   = 64 << 20
	MaxCodeBytes    = 16 << 20
	maxOutputFile   = 64 << 20
	inlineFileLimit = 256 << 10 // files above this go through PutFile
)

// plan is a validated request turned into what the sandbox must do.
type plan struct {
	rt       *runtimes.Runtime
	image    string
	argv     []string
	files    []agent.File // written before install/setup/run
	env      []string     // env of the main run
	setupEnv []string     // env of setup scripts and installs
	dir      string
	timeout  time.Duration
	stdin    []byte
	install  []string
	setup    string
	outputs  []string
}

// plan validates req in the order of surface.md §3.2 and resolves it.
func (e *Engine) plan(req Request) (*plan, error) {
	sources := 0
	for _, s := range []string{req.Code, req.CodeURL, req.Cmd} {
		if strings.TrimSpace(s) != "" {
			sources++
		}
	}
	switch {
	case sources > 1:
		return nil, invalidf("ExecutionRequest.code, ExecutionRequest.codeUrl, and ExecutionRequest.cmd are mutually exclusive — provide exactly one.")
	case sources == 0:
		return nil, invalidf("ExecutionRequest must include exactly one of: code, codeUrl, or cmd.")
	}
	if strings.TrimSpace(req.CodeURL) != "" {
		return nil, invalidf("Remote code fetching is disabled. Set remoteCode.enabled=true to allow it.")
	}
	rt, err := runtimes.Get(req.Runtime)
	if err != nil {
		return nil, invalid(err)
	}
	dir, err := runtimes.ResolveWorkdir(req.Workdir)
	if err != nil {
		return nil, invalid(err)
	}
	if len(req.Code) > MaxCodeBytes {
		return nil, invalidf("code exceeds the limit of %d bytes", MaxCodeBytes)
	}
	if len(req.Stdin) > MaxStdinBytes {
		return nil, invalidf("stdin exceeds the limit of %d bytes", MaxStdinBytes)
	}
	for k := range req.Env {
		if err := validEnvName(k); err != nil {
			return nil, err
		}
	}
	pkgs := runtimes.NormalizePackages(req.InstallPackages)
	if err := runtimes.ValidatePackages(pkgs); err != nil {
		return nil, invalid(err)
	}
	timeoutMs := req.TimeoutMs
	if timeoutMs < 0 {
		return nil, invalidf("Invalid timeout: %d ms. Must be greater than 0", timeoutMs)
	}
	if timeoutMs == 0 {
		timeoutMs = e.opts.TimeoutMs
	}
	if timeoutMs > e.opts.MaxTimeoutMs {
		return nil, invalidf("Invalid timeout: %d ms. Must be at most %d ms (maxTimeoutMs)", timeoutMs, e.opts.MaxTimeoutMs)
	}
	p := &plan{
		rt:      rt,
		image:   rt.Image,
		dir:     dir,
		timeout: msDuration(timeoutMs),
		install: pkgs,
		setup:   req.SetupScript,
	}
	if e.opts.Image != "" {
		p.image = e.opts.Image
	}
	if req.Stdin != "" {
		p.stdin = []byte(req.Stdin)
	}

	// Files first (sorted, so the order is deterministic), then the code.
	var total int
	paths := make([]string, 0, len(req.Files))
	for p := range req.Files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, fp := range paths {
		clean, err := sandboxPath(fp)
		if err != nil {
			return nil, err
		}
		total += len(req.Files[fp])
		if total > MaxFilesBytes {
			return nil, invalidf("files exceed the limit of %d bytes", MaxFilesBytes)
		}
		p.files = append(p.files, agent.File{Path: clean, Data: []byte(req.Files[fp]), Mode: 0o644})
	}
	if len(req.OutputPaths) > e.opts.MaxOutputPaths {
		return nil, invalidf("outputPaths names %d files, more than the limit of %d (maxOutputPaths)", len(req.OutputPaths), e.opts.MaxOutputPaths)
	}
	for _, op := range req.OutputPaths {
		clean, err := sandboxPath(op)
		if err != nil {
			return nil, err
		}
		p.outputs = append(p.outputs, clean)
	}

	switch {
	case strings.TrimSpace(req.Cmd) != "":
		p.argv = runtimes.CmdArgv(req.Cmd)
	default:
		// The inline form skips a file write; a file is needed when the
		// runtime has no inline form or the program reads files or stdin
		// beside it (surface.md §3.4 step 4).
		ok := false
		if len(p.files) == 0 && p.stdin == nil && len(p.outputs) == 0 && len(pkgs) == 0 && len(req.Code) < 64<<10 {
			p.argv, ok = rt.Argv(req.Code, "", req.AgentFlags)
		}
		if !ok {
			ext := rt.Ext
			if req.FileExtension != "" {
				ext = req.FileExtension
				if !strings.HasPrefix(ext, ".") {
					ext = "." + ext
				}
				if strings.ContainsAny(ext, "/\x00") || len(ext) > 16 {
					return nil, invalidf("Invalid file extension: %q", req.FileExtension)
				}
			}
			codePath := agent.SandboxDir + "/main" + ext
			p.files = append(p.files, agent.File{Path: codePath, Data: []byte(req.Code), Mode: 0o644})
			p.argv, _ = rt.Argv(req.Code, codePath, req.AgentFlags)
		}
	}

	base := runtimes.BaseEnv()
	p.env = append(p.env, base...)
	p.env = appendMap(p.env, e.opts.Secrets)
	p.env = appendMap(p.env, req.Env)
	p.setupEnv = append(p.setupEnv, p.env...)
	p.setupEnv = append(p.setupEnv, "PATH="+runtimes.SetupPath())
	return p, nil
}

// sandboxPath validates a client path for files and output paths: absolute
// under /sandbox or /tmp (or relative to /sandbox), no NUL, no escape.
func sandboxPath(p string) (string, error) {
	if p == "" || strings.ContainsRune(p, 0) {
		return "", invalidf("Invalid file path: %q", p)
	}
	if !path.IsAbs(p) {
		p = agent.SandboxDir + "/" + p
	}
	c := path.Clean(p)
	for _, root := range []string{agent.SandboxDir, agent.TmpDir} {
		if strings.HasPrefix(c, root+"/") {
			return c, nil
		}
	}
	return "", invalidf("File path must be inside /sandbox: %q", p)
}

func appendMap(env []string, m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+m[k])
	}
	return env
}

func validEnvName(k string) error {
	if err := runtimes.ValidateEnvName(k); err != nil {
		return invalid(err)
	}
	return nil
}

// hostDeadline bounds how long the engine waits for the agent to report an
// execution: the program's own timeout plus slack for the agent to kill it
// and flush its output.
func hostDeadline(timeout time.Duration) time.Duration {
	return addSat(timeout, 10*time.Second)
}

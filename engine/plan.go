package engine

import (
	"context"
	"path"
	"sort"
	"strconv"
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
	input    *Input // streamed stdin and signals (ExecuteInteractive)
	install  []string
	setup    string
	// imageSetup is the image's own setup script (custom images), run
	// before setup.
	imageSetup string
	outputs    []string
	// cgroup is what the sandbox's cgroup used during the run, measured
	// when the audit log tracks resources.
	cgroup *cgroupUsage
}

// plan validates req in the documented order (first failure wins) and resolves it.
func (e *Engine) plan(req Request) (*plan, error) {
	if err := e.agentNetwork(req.Runtime); err != nil {
		return nil, err
	}
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
		// Execute and ExecuteStream fetch remote code before planning.
		return nil, invalidf("codeUrl was not fetched")
	}
	rt, err := runtimes.Get(req.Runtime)
	if err != nil || !runtimes.Built(req.Runtime) {
		return nil, invalidf("Unknown runtime: %q. Available: %s", req.Runtime, strings.Join(runtimes.Available(), ", "))
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
	pkgs, err := rt.ValidateInstalls(req.InstallPackages)
	if err != nil {
		return nil, invalid(err)
	}
	if len(pkgs) > 0 && e.opts.Network == NetworkNone {
		return nil, invalidf("%s", TextInstallNeedsNetwork)
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
		timeout: agent.MsDuration(timeoutMs),
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
		// A UTF-8 byte order mark means nothing in UTF-8 and bash (or
		// python3 -c) would read it as code: drop it.
		req.Code = strings.TrimPrefix(req.Code, "\ufeff")
		argv, codeFile, err := e.codeArgv(req, rt, p)
		if err != nil {
			return nil, err
		}
		if codeFile != nil {
			p.files = append(p.files, *codeFile)
		}
		p.argv = argv
	}

	base := runtimes.BaseEnv()
	p.env = append(p.env, base...)
	p.env = append(p.env, e.planInstall(p)...)
	p.env = append(p.env, rt.InstalledEnv(pkgs, runtimes.RunPath())...)
	p.env = appendMap(p.env, e.opts.Secrets)
	p.env = appendMap(p.env, req.Env)
	p.env = append(p.env, e.networkEnv()...)
	p.setupEnv = append(p.setupEnv, p.env...)
	p.setupEnv = append(p.setupEnv, "PATH="+runtimes.SetupPath())
	p.setupEnv = append(p.setupEnv, rt.InstalledEnv(pkgs, runtimes.SetupPath())...)
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

// codeArgv decides how the code runs. A file given by the client
// (FileExtension set) and every persistent-mode execution run as a file,
// /sandbox/main<ext> (persistent: /sandbox/exec_<ms><ext>, so earlier
// executions' files stay), so __file__, import.meta, module semantics and
// a UTF-8 BOM behave as they do for a file. Inline code stays inline
// (python3 -c, node -e, ...) where the runtime has an inline form and
// nothing else needs a file.
func (e *Engine) codeArgv(req Request, rt *runtimes.Runtime, p *plan) ([]string, *agent.File, error) {
	asFile := req.FileExtension != "" || e.opts.Mode == ModePersistent
	if !asFile && len(p.files) == 0 && p.stdin == nil && len(p.outputs) == 0 && len(p.install) == 0 && len(req.Code) < 64<<10 {
		if argv, ok := rt.Argv(req.Code, "", req.AgentFlags); ok {
			return argv, nil, nil
		}
	}
	ext := rt.Ext
	if req.FileExtension != "" {
		ext = req.FileExtension
		if !strings.HasPrefix(ext, ".") {
			ext = "." + ext
		}
		if strings.ContainsAny(ext, "/\x00") || len(ext) > 16 {
			return nil, nil, invalidf("Invalid file extension: %q", req.FileExtension)
		}
	}
	name := "main"
	if e.opts.Mode == ModePersistent {
		name = "exec_" + strconv.FormatInt(time.Now().UnixMilli(), 10)
	}
	codePath := agent.SandboxDir + "/" + name + ext
	argv, _ := rt.Argv(req.Code, codePath, req.AgentFlags)
	return argv, &agent.File{Path: codePath, Data: []byte(req.Code), Mode: 0o644}, nil
}

// explainStart turns the agent's bare "start <cmd>: no such file or
// directory" into what went wrong when the cause is a working directory
// that does not exist (checked with one more exec, on this failure path
// only).
func (e *Engine) explainStart(ctx context.Context, sb *sandbox, p *plan, err error) error {
	if p.dir == agent.SandboxDir || !strings.Contains(err.Error(), "no such file or directory") {
		return err
	}
	ex := agent.Exec{Argv: []string{"test", "-d", p.dir}, Env: p.env, Dir: agent.SandboxDir, TimeoutMs: 5000}
	exit, terr := sb.conn.exec(ctx, ex, nil, hostDeadline(5*time.Second), func(agent.Type, []byte) {})
	if terr != nil || exit.ExitCode == 0 {
		return err
	}
	return invalidf("Working directory does not exist: %s. Create it first, e.g. --setup \"mkdir -p %s\"", p.dir, p.dir)
}

// Refusals of the agent runtime without a way to its LLM provider.
const (
	TextAgentNeedsNetwork   = "Agent runtime requires network access. The AI coding agent needs to reach its LLM provider API. Use --net host, or --net filtered --allow \"api.anthropic.com\" (or your provider's domain)."
	TextAgentNeedsWhitelist = "Agent runtime requires at least one network whitelist entry. The AI coding agent needs to reach its LLM provider API. Use --allow \"api.anthropic.com\" (or your provider's domain)."
)

// agentNetwork checks that an agent request can reach its provider: not
// network none, and filtered only with a whitelist entry. It comes first
// in validation, for cmd requests too.
func (e *Engine) agentNetwork(runtime string) error {
	if runtime != runtimes.Agent {
		return nil
	}
	switch e.opts.Network {
	case NetworkNone, "":
		return invalidf("%s", TextAgentNeedsNetwork)
	case NetworkFiltered:
		if e.opts.NetworkFilter == nil || len(e.opts.NetworkFilter.Whitelist) == 0 {
			return invalidf("%s", TextAgentNeedsWhitelist)
		}
	}
	return nil
}

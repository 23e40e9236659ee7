package main

import (
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/isol8/isol8/agent"
)

// backgroundGrace is how long output pipes may stay open after the main
// process exited (a background child still writing) before the rest of the
// sandbox's processes are killed.
const backgroundGrace = 250 * time.Millisecond

// execution is one running user process and its output pumps.
type execution struct {
	id uint32
	a  *agentState

	stdinMu   sync.Mutex
	stdinCond *sync.Cond
	stdinQ    [][]byte
	stdinEOF  bool
	stdinW    *os.File

	// stateMu guards the fields below: kill runs on the control loop, the
	// timer and the pumps while run forks.
	stateMu      sync.Mutex
	pgid         int  // the process group, 0 until the fork
	killed       bool // a kill arrived; one before the fork still applies
	timedOut     bool
	outputKilled bool
}

func (a *agentState) startExec(id uint32, req agent.Exec) {
	ensureEngineSockets()
	a.mu.Lock()
	if a.running != nil {
		a.mu.Unlock()
		a.fail(id, "busy", errors.New("another execution is running in this sandbox"))
		return
	}
	ex := &execution{id: id, a: a}
	ex.stdinCond = sync.NewCond(&ex.stdinMu)
	a.running = ex
	a.mu.Unlock()

	go func() {
		exit, code, err := ex.run(req)
		a.mu.Lock()
		a.running = nil
		a.mu.Unlock()
		if err != nil {
			a.fail(id, code, err)
			return
		}
		if err := a.out.WriteJSON(agent.TypeExit, id, exit); err != nil {
			log.Printf("send exit frame: %v", err)
		}
	}()
}

// run starts the process and waits for it and its output. The returned code
// classifies an error ("invalid" for bad requests).
func (ex *execution) run(req agent.Exec) (agent.Exit, string, error) {
	if len(req.Argv) == 0 {
		return agent.Exit{}, "invalid", errors.New("exec: empty argv")
	}
	dir := req.Dir
	if dir == "" {
		dir = agent.SandboxDir
	}
	if !insideSandbox(dir) {
		return agent.Exit{}, "invalid", errors.New("Working directory must be inside /sandbox")
	}
	for _, f := range req.Files {
		if err := writeSandboxFile(f.Path, f.Data, f.Mode); err != nil {
			return agent.Exit{}, "invalid", err
		}
	}
	path, err := lookPath(req.Argv[0], req.Env)
	if err != nil {
		return agent.Exit{}, "invalid", err
	}

	files, closeAll, err := ex.pipes(req.Stdin)
	if err != nil {
		return agent.Exit{}, "", err
	}
	stdoutR, stderrR := files.stdoutR, files.stderrR
	// Always the sandbox user: no process the agent starts runs as root, so
	// nothing user code planted (files, environment) ever runs privileged.
	cred := &syscall.Credential{Uid: agent.SandboxUID, Gid: agent.SandboxGID, Groups: []uint32{}}
	oomBefore := oomKills()
	start := time.Now()
	if ex.wasKilled() {
		// Cancelled before it started: nothing to run.
		closeAll()
		stdoutR.Close()
		stderrR.Close()
		if ex.stdinW != nil {
			ex.stdinW.Close()
		}
		return agent.Exit{ExitCode: 128 + int(syscall.SIGKILL), Signal: "SIGKILL"}, "", nil
	}
	pid, waitCh, err := ex.a.reaper.start(path, req.Argv, &syscall.ProcAttr{
		Dir:   dir,
		Env:   req.Env,
		Files: []uintptr{files.stdin.Fd(), files.stdoutW.Fd(), files.stderrW.Fd()},
		Sys:   &syscall.SysProcAttr{Credential: cred, Setpgid: true},
	})
	// The child holds its own copies now; ours must go so EOF can arrive.
	closeAll()
	if err != nil {
		stdoutR.Close()
		stderrR.Close()
		if ex.stdinW != nil {
			ex.stdinW.Close()
		}
		return agent.Exit{}, "invalid", fmt.Errorf("start %s: %w", req.Argv[0], err)
	}
	ex.started(pid)
	if req.Stdin {
		go ex.pumpStdin()
	}

	var timer *time.Timer
	if req.TimeoutMs > 0 {
		timer = time.AfterFunc(agent.MsDuration(req.TimeoutMs), func() {
			ex.stateMu.Lock()
			ex.timedOut = true
			ex.stateMu.Unlock()
			ex.kill(true)
		})
	}

	var wg sync.WaitGroup
	var outBytes, errBytes int64
	var outTrunc, errTrunc bool
	wg.Add(2)
	go func() {
		defer wg.Done()
		outBytes, outTrunc = ex.pump(stdoutR, agent.TypeStdout, req.MaxOutput)
	}()
	go func() {
		defer wg.Done()
		errBytes, errTrunc = ex.pump(stderrR, agent.TypeStderr, req.MaxOutput)
	}()

	info := <-waitCh
	duration := time.Since(start)
	pumpsDone := make(chan struct{})
	go func() { wg.Wait(); close(pumpsDone) }()
	select {
	case <-pumpsDone:
	case <-time.After(backgroundGrace):
		// Something still holds a pipe: end the whole sandbox's user processes.
		ex.a.killAll()
		<-pumpsDone
	}
	if timer != nil {
		timer.Stop()
	}
	// No process of this run may outlive it: setsid escapes the group, so
	// the whole namespace (except pid 1) goes.
	ex.a.killAll()
	ex.closeStdin()

	ex.stateMu.Lock()
	timedOut, outputKilled := ex.timedOut, ex.outputKilled
	ex.stateMu.Unlock()
	exit := agent.Exit{
		TimedOut:     timedOut,
		OutputKilled: outputKilled,
		StdoutBytes:  outBytes,
		StderrBytes:  errBytes,
		Truncated:    outTrunc || errTrunc,
		DurationMs:   duration.Milliseconds(),
		UserCPUMs:    tvMs(info.rusage.Utime),
		SystemCPUMs:  tvMs(info.rusage.Stime),
		MaxRSSKB:     info.rusage.Maxrss,
	}
	ws := info.status
	switch {
	case ws.Exited():
		exit.ExitCode = ws.ExitStatus()
	case ws.Signaled():
		exit.ExitCode = 128 + int(ws.Signal())
		exit.Signal = sigName(ws.Signal())
	}
	if ws.Signaled() && ws.Signal() == syscall.SIGKILL && !timedOut && !outputKilled && oomKills() > oomBefore {
		exit.OOMKilled = true
	}
	return exit, "", nil
}

type stdioFiles struct {
	stdin, stdoutW, stderrW *os.File
	stdoutR, stderrR        *os.File
}

// pipes makes the child's stdio. Without stdin the child reads /dev/null,
// never the agent's control channel.
func (ex *execution) pipes(withStdin bool) (stdioFiles, func(), error) {
	var f stdioFiles
	var toClose []*os.File
	closeAll := func() {
		for _, c := range toClose {
			c.Close()
		}
	}
	fail := func(err error) (stdioFiles, func(), error) {
		closeAll()
		if f.stdoutR != nil {
			f.stdoutR.Close()
		}
		if f.stderrR != nil {
			f.stderrR.Close()
		}
		return stdioFiles{}, nil, fmt.Errorf("exec: make pipes: %w", err)
	}
	if withStdin {
		r, w, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		f.stdin, ex.stdinW = r, w
	} else {
		n, err := os.Open(os.DevNull)
		if err != nil {
			return fail(err)
		}
		f.stdin = n
	}
	toClose = append(toClose, f.stdin)
	r, w, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	f.stdoutR, f.stdoutW = r, w
	toClose = append(toClose, w)
	r, w, err = os.Pipe()
	if err != nil {
		return fail(err)
	}
	f.stderrR, f.stderrW = r, w
	toClose = append(toClose, w)
	return f, closeAll, nil
}

// pump forwards one output stream. Bytes past max are counted but dropped;
// a stream that runs DrainLimit past max gets the process group killed, so
// `yes` under a small cap ends at once instead of at the timeout.
func (ex *execution) pump(r *os.File, t agent.Type, max int64) (total int64, truncated bool) {
	defer r.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if max > 0 {
				switch {
				case total >= max:
					chunk = nil
				case total+int64(n) > max:
					chunk = chunk[:max-total]
				}
				if total+int64(n) > max {
					truncated = true
				}
			}
			total += int64(n)
			if len(chunk) > 0 {
				if werr := ex.a.out.Write(t, ex.id, chunk); werr != nil {
					log.Printf("send %s: %v", t, werr)
				}
			}
			if max > 0 && total > max+agent.DrainLimit {
				ex.stateMu.Lock()
				ex.outputKilled = true
				ex.stateMu.Unlock()
				ex.kill(true)
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				log.Printf("read %s: %v", t, err)
			}
			return total, truncated
		}
	}
}

// kill ends the execution's process group; with all it also kills every
// other process of the sandbox (descendants that left the group). A kill
// before the fork is remembered: started or run honours it.
func (ex *execution) kill(all bool) {
	ex.stateMu.Lock()
	ex.killed = true
	pgid := ex.pgid
	ex.stateMu.Unlock()
	if pgid > 0 {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	if all {
		ex.a.killAll()
	}
}

// signal sends sig to the process group (when it has started) without
// marking the execution killed: the program may handle it.
func (ex *execution) signal(sig syscall.Signal) {
	ex.stateMu.Lock()
	pgid := ex.pgid
	ex.stateMu.Unlock()
	if pgid > 0 {
		_ = syscall.Kill(-pgid, sig)
	}
}

// started records the forked process group and kills it at once when a
// kill arrived while it was being started.
func (ex *execution) started(pid int) {
	ex.stateMu.Lock()
	ex.pgid = pid
	killed := ex.killed
	ex.stateMu.Unlock()
	if killed {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

func (ex *execution) wasKilled() bool {
	ex.stateMu.Lock()
	defer ex.stateMu.Unlock()
	return ex.killed
}

// killAll sends SIGKILL to every process but the agent. Only pid 1 may do
// this: kill(-1) from anywhere else would hit the host.
func (a *agentState) killAll() {
	if a.pid1 {
		_ = syscall.Kill(-1, syscall.SIGKILL)
	}
}

func (ex *execution) feedStdin(eof bool, data []byte) {
	ex.stdinMu.Lock()
	defer ex.stdinMu.Unlock()
	if eof {
		ex.stdinEOF = true
	} else if len(data) > 0 {
		ex.stdinQ = append(ex.stdinQ, data)
	}
	ex.stdinCond.Signal()
}

func (ex *execution) closeStdin() {
	ex.feedStdin(true, nil)
}

// pumpStdin writes queued stdin frames to the child without ever blocking
// the control loop.
func (ex *execution) pumpStdin() {
	defer ex.stdinW.Close()
	for {
		ex.stdinMu.Lock()
		for len(ex.stdinQ) == 0 && !ex.stdinEOF {
			ex.stdinCond.Wait()
		}
		if len(ex.stdinQ) == 0 && ex.stdinEOF {
			ex.stdinMu.Unlock()
			return
		}
		chunk := ex.stdinQ[0]
		ex.stdinQ = ex.stdinQ[1:]
		ex.stdinMu.Unlock()
		if _, err := ex.stdinW.Write(chunk); err != nil {
			// The reader went away (EPIPE); drop the rest.
			ex.stdinMu.Lock()
			ex.stdinQ = nil
			ex.stdinMu.Unlock()
			return
		}
	}
}

// lookPath resolves argv0 against the PATH of the request's environment.
func lookPath(argv0 string, env []string) (string, error) {
	if strings.Contains(argv0, "/") {
		return argv0, nil
	}
	pathEnv := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, argv0)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", argv0)
}

// oomKills reads the memory cgroup's OOM kill counter (v1 memory.oom_control
// or v2 memory.events); -1 when unavailable.
func oomKills() int64 {
	for _, p := range []string{"/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory.events"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
				var n int64
				if _, err := fmt.Sscan(v, &n); err == nil {
					return n
				}
			}
		}
	}
	return -1
}

func tvMs(tv syscall.Timeval) int64 { return tv.Sec*1000 + int64(tv.Usec)/1000 }

func sigName(s syscall.Signal) string {
	switch s {
	case syscall.SIGKILL:
		return "SIGKILL"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGSEGV:
		return "SIGSEGV"
	case syscall.SIGABRT:
		return "SIGABRT"
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGPIPE:
		return "SIGPIPE"
	case syscall.SIGXCPU:
		return "SIGXCPU"
	}
	return fmt.Sprintf("signal %d", int(s))
}

// Command isol8-init is pid 1 of every isol8 sandbox. It speaks the agent
// protocol (package agent) on its stdin/stdout, runs user programs as the
// unprivileged sandbox user, reaps every process, enforces timeouts and output
// caps, moves files in and out of /sandbox, and resets the sandbox for reuse.
//
// It is a static binary bind-mounted read-only into the container, never baked
// into images. It runs as uid 0 inside the container with only the
// capabilities it needs; what shields it from user code is the uid difference
// (user code runs as uid 100 with no capabilities, and with an empty bounding
// set, so none can be regained). Every process it starts runs as uid 100:
// nothing user code can influence ever runs as root.
package main

import (
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/isol8/isol8/agent"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("isol8-init: ")
	if os.Getpid() == 1 {
		// Before anything else runs: no process started from here on may
		// ever hold a capability.
		if err := emptyBoundingSet(); err != nil {
			log.Printf("%v", err)
			os.Exit(1)
		}
		// Nothing has run yet: this is what a fresh sandbox looks like.
		recordFreshDirs()
	}
	a := newAgent(os.Stdin, os.Stdout)
	if err := a.run(); err != nil {
		log.Printf("%v", err)
		os.Exit(1)
	}
}

// agentState is the init's whole state: one control loop reading frames, at
// most one running execution, and the reaper.
type agentState struct {
	in  *agent.Reader
	out *agent.Writer
	// pid1 is true when the agent is the namespace's init; only then may it
	// kill every other process with kill(-1).
	pid1   bool
	reaper *reaper

	mu      sync.Mutex
	running *execution         // the execution in progress, if any
	uploads map[uint32]*upload // file uploads in progress
	done    chan struct{}
}

func newAgent(r io.Reader, w io.Writer) *agentState {
	return &agentState{
		in:      agent.NewReader(r),
		out:     agent.NewWriter(w),
		pid1:    os.Getpid() == 1,
		reaper:  newReaper(),
		uploads: map[uint32]*upload{},
		done:    make(chan struct{}),
	}
}

func (a *agentState) run() error {
	// User code may exhaust the pids limit, and the Go runtime aborts when it
	// cannot create a thread. Make the threads the agent will ever need now,
	// while pids are free; the runtime keeps idle threads for reuse. Once the
	// agent is ready the engine sets the pids limit to the user's limit plus
	// the threads the agent really runs.
	reserveThreads(agent.AgentThreads)
	go a.reaper.loop()
	if err := a.out.WriteJSON(agent.TypeReady, 0, agent.Ready{Version: agent.ProtocolVersion, PID: os.Getpid()}); err != nil {
		return err
	}
	detached := false
	for {
		f, err := a.in.Read()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if detached {
					// Kept for inspection (--persist): stay pid 1 until
					// the container is removed.
					for {
						time.Sleep(time.Hour)
					}
				}
				return nil // the engine closed our stdin: nothing more to do
			}
			return fmt.Errorf("read frame: %w", err)
		}
		if f.Type == agent.TypeShutdown {
			a.killAll()
			return nil
		}
		if f.Type == agent.TypeDetach {
			detached = true
			continue
		}
		a.dispatch(f)
	}
}

func (a *agentState) dispatch(f agent.Frame) {
	switch f.Type {
	case agent.TypeExec:
		var req agent.Exec
		if err := f.Decode(&req); err != nil {
			a.fail(f.ID, "invalid", err)
			return
		}
		a.startExec(f.ID, req)
	case agent.TypeStdin, agent.TypeStdinEOF:
		a.mu.Lock()
		ex := a.running
		a.mu.Unlock()
		if ex != nil && ex.id == f.ID {
			ex.feedStdin(f.Type == agent.TypeStdinEOF, f.Payload)
		}
	case agent.TypeSignal:
		a.mu.Lock()
		ex := a.running
		a.mu.Unlock()
		if ex != nil && ex.id == f.ID {
			var sig agent.Signal
			_ = f.Decode(&sig)
			switch sig.Signal {
			case "INT":
				ex.signal(syscall.SIGINT)
			case "TERM":
				ex.signal(syscall.SIGTERM)
			default:
				ex.kill(false)
			}
		}
	case agent.TypePutFile:
		var req agent.PutFile
		if err := f.Decode(&req); err != nil {
			a.fail(f.ID, "invalid", err)
			return
		}
		a.startUpload(f.ID, req)
	case agent.TypeFileData, agent.TypeFileEOF:
		a.continueUpload(f)
	case agent.TypeGetFile:
		var req agent.GetFile
		if err := f.Decode(&req); err != nil {
			a.fail(f.ID, "invalid", err)
			return
		}
		go a.sendFile(f.ID, req)
	case agent.TypeReset:
		go a.reset(f.ID)
	default:
		a.fail(f.ID, "invalid", fmt.Errorf("unknown frame type %s", f.Type))
	}
}

// prestartThreads forces the runtime to create n OS threads by blocking n
// goroutines in a system call at the same time.
func prestartThreads(n int) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ts := syscall.Timespec{Nsec: 20e6}
			_ = syscall.Nanosleep(&ts, nil)
		}()
	}
	wg.Wait()
}

// fail answers request id with an error frame.
func (a *agentState) fail(id uint32, code string, err error) {
	if werr := a.out.WriteJSON(agent.TypeError, id, agent.Error{Message: err.Error(), Code: code}); werr != nil {
		log.Printf("send error frame: %v", werr)
	}
}

func (a *agentState) ok(id uint32, size int64) {
	if err := a.out.WriteJSON(agent.TypeOK, id, agent.OK{Size: size}); err != nil {
		log.Printf("send ok frame: %v", err)
	}
}

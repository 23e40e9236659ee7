package main

import (
	"log"
	"os"
)

// userOOMScoreAdj is the oom_score_adj of every process the agent starts:
// the highest, so when the sandbox's memory is full (a tmpfs counts against
// it) the OOM killer takes user code, not the agent, and the run reports
// oomKilled. Lowering the agent's own score instead (-1000) needs
// CAP_SYS_RESOURCE in the host's user namespace, which the agent lacks and
// runc may lack too; raising a score needs no privilege.
const userOOMScoreAdj = "1000"

const selfOOMScoreAdj = "/proc/self/oom_score_adj"

// oomScore hands user code the victim's score. The score is inherited at
// fork and syscall.ForkExec has no hook between fork and exec, so the agent
// raises its own score around the fork and returns to its own afterwards
// (allowed without privilege: the kernel lets a process go back down to the
// score it started with). Setting the child's score after ForkExec instead
// loses a race: bash forks its first command before the agent gets there,
// and that command keeps the agent's score.
type oomScore struct {
	own []byte // the agent's score at start; nil when /proc cannot tell
}

func newOOMScore() oomScore {
	own, err := os.ReadFile(selfOOMScoreAdj)
	if err != nil {
		log.Printf("read oom_score_adj: %v", err)
		return oomScore{}
	}
	return oomScore{own: own}
}

// aroundFork raises the agent's score for a fork and returns the function
// that lowers it again. The agent is exposed only while the child execs.
func (o oomScore) aroundFork() (restore func()) {
	if o.own == nil {
		return func() {}
	}
	if err := os.WriteFile(selfOOMScoreAdj, []byte(userOOMScoreAdj), 0); err != nil {
		log.Printf("raise oom_score_adj: %v", err)
		return func() {}
	}
	return func() {
		if err := os.WriteFile(selfOOMScoreAdj, o.own, 0); err != nil {
			log.Printf("restore oom_score_adj: %v", err)
		}
	}
}

package main

import (
	"errors"
	"io/fs"
	"log"
	"math"
	"os"
	"strconv"
	"syscall"
	"time"
)

// msDuration turns a millisecond count from the engine into a duration,
// saturating instead of overflowing: a huge TimeoutMs must mean "long", never
// a negative duration or none at all.
func msDuration(ms int64) time.Duration {
	switch {
	case ms <= 0:
		return 0
	case ms > int64(math.MaxInt64/time.Millisecond):
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(ms) * time.Millisecond
}

// userOOMScoreAdj is the oom_score_adj of every process the agent starts:
// the highest, so when the sandbox's memory is full (a tmpfs counts against
// it) the OOM killer takes user code, never the agent, and the run reports
// oomKilled. Lowering the agent's own score instead (-1000) needs
// CAP_SYS_RESOURCE in the host's user namespace, which the agent lacks and
// runc may lack too; raising a score needs no privilege.
const userOOMScoreAdj = "1000"

// markOOMVictim gives a process the agent started the highest OOM score.
// syscall.ForkExec has no hook between fork and exec, so this runs right
// after: user code spends only those microseconds at the agent's score.
// Children of user code inherit the score.
func markOOMVictim(pid int) {
	p := "/proc/" + strconv.Itoa(pid) + "/oom_score_adj"
	if err := os.WriteFile(p, []byte(userOOMScoreAdj), 0); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ESRCH) {
		log.Printf("set oom_score_adj of %d: %v", pid, err)
	}
}

// Package userns gives every sandbox its own host identity: a range of host
// uids and gids, unique among live sandboxes and owned by no host account,
// that the sandbox's user namespace maps container ids 0..size-1 onto.
//
// Allocation is recorded on disk so that it survives the allocating process:
// each slot of the configured range has a lock file, held with flock(2) by
// the process that owns the slot and naming that owner. A slot whose lock is
// free and whose file is empty is free. A slot whose lock is free but whose
// file still names an owner was left by a process that died without
// releasing it; it is reused only once no host process runs with an id of
// the slot's range (a container of the dead process may still be alive).
package userns

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// Defaults of the subordinate range sandboxes are given ids from.
const (
	// DefaultBase is far above the ids distributions give accounts
	// (system accounts below 1000, users from 1000, /etc/subuid ranges
	// from 100000 by default, 65536 each) so it collides with none on a
	// usual host; CheckHost verifies it on the real one.
	DefaultBase uint32 = 1_000_000
	// DefaultSize maps every 16-bit container id.
	DefaultSize uint32 = 65536
	// DefaultCount bounds the number of live sandboxes per host.
	DefaultCount = 1024
	// DefaultDir holds one lock file per slot.
	DefaultDir = "/var/lib/isol8/userns"
	// MinSize leaves room for the ids a sandbox uses (0, 100, 101, the
	// tty group 5) and the usual system ids of the images.
	MinSize uint32 = 1024
)

// Config is the subordinate range: Count slots of Size ids from Base.
type Config struct {
	Base  uint32
	Size  uint32
	Count int
	// Dir holds the slots' lock files (created 0700 when missing).
	Dir string
}

// WithDefaults returns c with zero fields replaced by the defaults.
func (c Config) WithDefaults() Config {
	if c.Base == 0 {
		c.Base = DefaultBase
	}
	if c.Size == 0 {
		c.Size = DefaultSize
	}
	if c.Count == 0 {
		c.Count = DefaultCount
	}
	if c.Dir == "" {
		c.Dir = DefaultDir
	}
	return c
}

// Validate checks that the range is usable: not root, at least MinSize ids
// per slot, and entirely below the invalid id 2^32-1.
func (c Config) Validate() error {
	switch {
	case c.Base == 0:
		return invalid("user namespace range must not start at host id 0")
	case c.Size < MinSize:
		return invalid("user namespace size must be at least %d ids, got %d", MinSize, c.Size)
	case c.Count < 1:
		return invalid("user namespace count must be at least 1, got %d", c.Count)
	case uint64(c.Base)+uint64(c.Size)*uint64(c.Count) > math.MaxUint32:
		return invalid("user namespace range %d + %d × %d ends above the largest host id %d", c.Base, c.Count, c.Size, uint32(math.MaxUint32-1))
	case c.Dir == "" || !filepath.IsAbs(c.Dir):
		return invalid("user namespace state directory must be an absolute path, got %q", c.Dir)
	}
	return nil
}

// End is one past the last host id of the whole range.
func (c Config) End() uint64 { return uint64(c.Base) + uint64(c.Size)*uint64(c.Count) }

// ErrExhausted is returned (wrapped, errdefs.IsResourceExhausted) when every
// slot is taken.
var ErrExhausted = errdefs.ErrResourceExhausted

// Allocator hands out slots of one range. It is safe for concurrent use,
// also by several processes sharing Dir.
type Allocator struct {
	cfg Config
	// inUse reports whether a host process runs with an id in [lo, hi).
	inUse func(lo, hi uint64) (bool, error)

	mu   sync.Mutex
	next int // where the next search starts, to skip slots we hold
}

// New validates cfg (defaults applied) and prepares its state directory.
func New(cfg Config) (*Allocator, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("user namespace state directory: %w", err)
	}
	return &Allocator{cfg: cfg, inUse: procsInRange("/proc")}, nil
}

// Config returns the allocator's range (defaults applied).
func (a *Allocator) Config() Config { return a.cfg }

// Lease is one allocated slot: host ids [HostID, HostID+Size).
type Lease struct {
	HostID uint32
	Size   uint32
	Slot   int

	mu sync.Mutex
	f  *os.File
}

// Allocate takes a free slot for owner (a sandbox id, recorded in the slot's
// file with this process's pid).
func (a *Allocator) Allocate(owner string) (*Lease, error) {
	a.mu.Lock()
	start := a.next
	a.mu.Unlock()
	for i := range a.cfg.Count {
		slot := (start + i) % a.cfg.Count
		l, err := a.try(slot, owner)
		if err != nil {
			return nil, err
		}
		if l != nil {
			a.mu.Lock()
			a.next = (slot + 1) % a.cfg.Count
			a.mu.Unlock()
			return l, nil
		}
	}
	return nil, fmt.Errorf("%w: all %d user namespace ranges are in use by live sandboxes", ErrExhausted, a.cfg.Count)
}

// try takes slot if it is free; (nil, nil) means it is not.
func (a *Allocator) try(slot int, owner string) (*Lease, error) {
	f, err := os.OpenFile(filepath.Join(a.cfg.Dir, "slot-"+strconv.Itoa(slot)), os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open user namespace slot %d: %w", slot, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("lock user namespace slot %d: %w", slot, err)
	}
	lo := uint64(a.cfg.Base) + uint64(slot)*uint64(a.cfg.Size)
	if stale, err := f.Stat(); err != nil {
		f.Close()
		return nil, fmt.Errorf("user namespace slot %d: %w", slot, err)
	} else if stale.Size() > 0 {
		// Left by an owner that died holding it: reuse only when none of
		// its processes (a leftover container) remains.
		busy, err := a.inUse(lo, lo+uint64(a.cfg.Size))
		if err != nil || busy {
			f.Close()
			return nil, err
		}
	}
	if err := record(f, fmt.Sprintf("pid=%d owner=%s\n", os.Getpid(), owner)); err != nil {
		f.Close()
		return nil, fmt.Errorf("record user namespace slot %d: %w", slot, err)
	}
	return &Lease{HostID: uint32(lo), Size: a.cfg.Size, Slot: slot, f: f}, nil
}

func record(f *os.File, s string) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(s), 0)
	return err
}

// Release frees the slot. Call it only once nothing runs with the slot's ids
// any more (the sandbox's container is deleted). It is idempotent.
func (l *Lease) Release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Truncate(0)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	if err != nil {
		return fmt.Errorf("release user namespace slot %d: %w", l.Slot, err)
	}
	return nil
}

// procsInRange returns a check of whether any process under procDir has a
// uid or gid in [lo, hi).
func procsInRange(procDir string) func(lo, hi uint64) (bool, error) {
	return func(lo, hi uint64) (bool, error) {
		entries, err := os.ReadDir(procDir)
		if err != nil {
			return false, fmt.Errorf("scan processes: %w", err)
		}
		for _, e := range entries {
			if _, err := strconv.Atoi(e.Name()); err != nil {
				continue
			}
			if processInRange(filepath.Join(procDir, e.Name(), "status"), lo, hi) {
				return true, nil
			}
		}
		return false, nil
	}
}

func processInRange(status string, lo, hi uint64) bool {
	f, err := os.Open(status)
	if err != nil {
		return false // gone
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 64<<10))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		if k != "Uid" && k != "Gid" {
			continue
		}
		for _, s := range strings.Fields(v) {
			if n, err := strconv.ParseUint(s, 10, 32); err == nil && n >= lo && n < hi {
				return true
			}
		}
	}
	return false
}

func invalid(format string, args ...any) error {
	return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(format, args...))
}

// Abandon gives up the slot without freeing it, for a sandbox that may
// outlive its owner (a kept container, a failed removal): the slot is
// reused only when no host process has an id in its range. It is idempotent.
func (l *Lease) Abandon() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

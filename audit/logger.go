package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Destinations.
const (
	DestFilesystem = "filesystem"
	DestFile       = "file" // alias of filesystem
	DestStdout     = "stdout"
)

// FileName is the live log file in the log directory; rotated files are
// executions-<time>-<n>.log beside it.
const FileName = "executions.log"

// Defaults of zero Config fields.
const (
	DefaultMaxFileBytes = 100 << 20
	DefaultBufferSize   = 4096
	// DefaultDirName is the log directory below the working directory when
	// neither audit.logDir nor $ISOL8_AUDIT_DIR names one.
	DefaultDirName = ".isol8_audit"
)

// warnEvery rate-limits the warning about dropped records.
const warnEvery = 10 * time.Second

// Config configures a Logger.
type Config struct {
	// Destination is "filesystem" (or "file") or "stdout".
	Destination string
	// Dir is the log directory (see ResolveDir); created if missing.
	Dir string
	// IncludeCode and IncludeOutput add the code and the (masked) output
	// to execution records; without them a record holds only the code's
	// hash. TrackResources adds CPU time and peak memory.
	IncludeCode    bool
	IncludeOutput  bool
	TrackResources bool
	// RetentionDays removes rotated log files older than this many days
	// (by modification time); 0 keeps them.
	RetentionDays int
	// MaxFileBytes rotates the live file when a record would take it past
	// this size (0: DefaultMaxFileBytes).
	MaxFileBytes int64
	// BufferSize is how many records may wait for the writer; more are
	// dropped (0: DefaultBufferSize).
	BufferSize int
	// Writer replaces the destination (tests; a slow disk); rotation and
	// retention then do not apply.
	Writer io.Writer
	// Stdout is where the stdout destination writes (nil: os.Stdout).
	Stdout io.Writer
	// Logger receives warnings (dropped records, write errors).
	Logger *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// ResolveDir picks the log directory: logDir, else envDir
// ($ISOL8_AUDIT_DIR), else <cwd>/.isol8_audit. A relative result is taken
// relative to cwd.
func ResolveDir(logDir, envDir, cwd string) string {
	d := logDir
	if d == "" {
		d = envDir
	}
	if d == "" {
		d = DefaultDirName
	}
	if !filepath.IsAbs(d) {
		d = filepath.Join(cwd, d)
	}
	return d
}

// Logger writes audit records. A nil *Logger is valid and records nothing.
// It is safe for concurrent use.
type Logger struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	queue   chan *Record
	done    chan struct{}
	dropped atomic.Uint64
	written atomic.Uint64
	// lastWarn is the unix nano time of the last dropped-records warning.
	lastWarn atomic.Int64

	closeOnce sync.Once
	mu        sync.Mutex // guards closed against sends
	closed    bool

	out  io.Writer     // set for Writer and stdout destinations
	file *rotatingFile // set for the filesystem destination
}

// New validates cfg, prepares the destination (creates the directory,
// applies retention, opens the file) and starts the writer.
func New(cfg Config) (*Logger, error) {
	if cfg.MaxFileBytes <= 0 {
		cfg.MaxFileBytes = DefaultMaxFileBytes
	}
	if cfg.BufferSize <= 0 {
		cfg.BufferSize = DefaultBufferSize
	}
	if cfg.RetentionDays < 0 {
		return nil, fmt.Errorf("audit: retentionDays must be >= 0 (got %d)", cfg.RetentionDays)
	}
	l := &Logger{cfg: cfg, log: cfg.Logger, now: cfg.Now, queue: make(chan *Record, cfg.BufferSize), done: make(chan struct{})}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.now == nil {
		l.now = time.Now
	}
	switch {
	case cfg.Writer != nil:
		l.out = cfg.Writer
	case cfg.Destination == DestStdout:
		l.out = cfg.Stdout
		if l.out == nil {
			l.out = os.Stdout
		}
	case cfg.Destination == DestFilesystem || cfg.Destination == DestFile || cfg.Destination == "":
		if cfg.Dir == "" {
			return nil, fmt.Errorf("audit: no log directory")
		}
		f, err := openRotating(cfg.Dir, cfg.MaxFileBytes, cfg.RetentionDays, l.now, l.log)
		if err != nil {
			return nil, err
		}
		l.file = f
	default:
		return nil, fmt.Errorf("Unsupported audit destination: %s", cfg.Destination)
	}
	go l.writer()
	return l, nil
}

// IncludeCode, IncludeOutput and TrackResources report the configuration.
func (l *Logger) IncludeCode() bool    { return l != nil && l.cfg.IncludeCode }
func (l *Logger) IncludeOutput() bool  { return l != nil && l.cfg.IncludeOutput }
func (l *Logger) TrackResources() bool { return l != nil && l.cfg.TrackResources }

// Path returns the live log file, or "" for other destinations.
func (l *Logger) Path() string {
	if l == nil || l.file == nil {
		return ""
	}
	return l.file.path()
}

// Dropped returns how many records were dropped because the buffer was
// full (or the logger closed), for /metrics.
func (l *Logger) Dropped() uint64 {
	if l == nil {
		return 0
	}
	return l.dropped.Load()
}

// Written returns how many records were written.
func (l *Logger) Written() uint64 {
	if l == nil {
		return 0
	}
	return l.written.Load()
}

// Record queues an execution record. The caller on ctx (WithCaller) fills
// requestId, tenant and keyPrefix when the record has none. It never
// blocks: with the buffer full the record is dropped and counted.
func (l *Logger) Record(ctx context.Context, r *Record) {
	if l == nil || r == nil {
		return
	}
	if r.Type == "" {
		r.Type = TypeExecution
	}
	if c, ok := CallerFrom(ctx); ok {
		if r.RequestID == "" {
			r.RequestID = c.RequestID
		}
		if r.Tenant == "" {
			r.Tenant = c.Tenant
		}
		if r.KeyPrefix == "" {
			r.KeyPrefix = c.KeyPrefix
		}
	}
	if r.Timestamp == "" {
		r.Timestamp = FormatTime(l.now())
	}
	if !l.cfg.IncludeCode {
		r.Code = ""
	}
	if !l.cfg.IncludeOutput {
		r.Stdout, r.Stderr = "", ""
	}
	if !l.cfg.TrackResources {
		r.Resources = nil
	}
	l.enqueue(r)
}

// NetworkBlocked records a request the filtered proxy refused, for the
// execution executionID (may be empty).
func (l *Logger) NetworkBlocked(ctx context.Context, executionID string, b Blocked) {
	if l == nil {
		return
	}
	l.Record(ctx, &Record{Type: TypeNetworkBlocked, ExecutionID: executionID, Blocked: &b})
}

func (l *Logger) enqueue(r *Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		l.dropped.Add(1)
		return
	}
	select {
	case l.queue <- r:
	default:
		n := l.dropped.Add(1)
		l.warnDropped(n)
	}
}

func (l *Logger) warnDropped(total uint64) {
	now := l.now().UnixNano()
	last := l.lastWarn.Load()
	if now-last < int64(warnEvery) || !l.lastWarn.CompareAndSwap(last, now) {
		return
	}
	l.log.Warn("audit log buffer full: records dropped", "dropped_total", total, "buffer", l.cfg.BufferSize)
}

// writer is the one goroutine that writes; a slow destination slows only
// it.
func (l *Logger) writer() {
	defer close(l.done)
	buf := make([]byte, 0, 4096)
	for r := range l.queue {
		line, err := json.Marshal(r)
		if err != nil {
			l.log.Warn("Failed to record audit log:", "error", err)
			continue
		}
		buf = buf[:0]
		if l.out != nil && l.cfg.Writer == nil {
			buf = append(buf, "AUDIT_LOG: "...)
		}
		buf = append(buf, line...)
		buf = append(buf, '\n')
		if l.file != nil {
			err = l.file.write(buf)
		} else {
			_, err = l.out.Write(buf)
		}
		if err != nil {
			l.log.Warn("Failed to record audit log:", "error", err)
			continue
		}
		l.written.Add(1)
	}
}

// Close stops taking records, writes those queued (until ctx ends) and
// closes the file. It is idempotent.
func (l *Logger) Close(ctx context.Context) error {
	if l == nil {
		return nil
	}
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		close(l.queue)
		l.mu.Unlock()
	})
	select {
	case <-l.done:
	case <-ctx.Done():
		return fmt.Errorf("audit: close: %w", ctx.Err())
	}
	if l.file != nil {
		return l.file.close()
	}
	return nil
}

// FormatTime is the timestamp format of records.
func FormatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

package containerd

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"

	"github.com/isol8/isol8/api"
)

// Locations.
const (
	// DefaultAddress is where a system containerd listens.
	DefaultAddress = "/run/containerd/containerd.sock"
	// PrivateAddress is where the containerd isol8 starts itself listens.
	PrivateAddress = "/run/isol8/containerd/containerd.sock"
	privateRoot    = "/var/lib/isol8/containerd"
	privateState   = "/run/isol8/containerd/state"
	privateConfig  = "/run/isol8/containerd/config.toml"
	privateLog     = "/var/lib/isol8/containerd.log"
	privateLock    = "/run/isol8/containerd.lock"
)

// Config says how to reach containerd.
type Config struct {
	// Address of the socket; empty means CONTAINERD_ADDRESS, then DefaultAddress.
	Address string
	// RuntimeBinary is the OCI runtime the shim runs (default "runc").
	RuntimeBinary string
	// NoAutoStart disables starting a private containerd.
	NoAutoStart bool
	// Namespace is the containerd namespace; empty means Namespace.
	Namespace string
	Logger    *slog.Logger
}

// New connects to containerd. When the address was not chosen explicitly,
// nothing listens there, and containerd is installed, it starts (or reuses) a
// private containerd under /var/lib/isol8 and /run/isol8, detached from this
// process so later invocations reuse it.
func New(ctx context.Context, cfg Config) (*Driver, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rt := cfg.RuntimeBinary
	if rt == "" {
		rt = "runc"
	}
	if _, err := exec.LookPath(rt); err != nil {
		return nil, api.Unavailablef("OCI runtime %q not found: install it (apt-get install runc) or set containerd.runtime", rt)
	}
	addr, explicit := cfg.Address, true
	if addr == "" {
		addr = os.Getenv("CONTAINERD_ADDRESS")
	}
	if addr == "" {
		addr, explicit = DefaultAddress, false
	}
	if !listening(addr) {
		if explicit || cfg.NoAutoStart {
			return nil, unreachable(addr)
		}
		if _, err := exec.LookPath("containerd"); err != nil {
			return nil, unreachable(addr)
		}
		if err := startPrivate(ctx, log); err != nil {
			return nil, fmt.Errorf("start private containerd: %w", err)
		}
		addr = PrivateAddress
	}
	ns := cfg.Namespace
	if ns == "" {
		ns = Namespace
	}
	c, err := client.New(addr, client.WithDefaultNamespace(ns), client.WithTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w", addr, err)
	}
	return &Driver{client: c, address: addr, runtimeBinary: rt, namespace: ns, log: log, chains: map[string]string{}}, nil
}

func unreachable(addr string) error {
	return api.Unavailablef("containerd unreachable at %s: start it or install it", addr)
}

func listening(addr string) bool {
	c, err := net.DialTimeout("unix", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// startPrivate starts isol8's own containerd unless it already runs. A file
// lock keeps concurrent isol8 processes from starting two.
func startPrivate(ctx context.Context, log *slog.Logger) error {
	if listening(PrivateAddress) {
		return nil
	}
	for _, dir := range []string{filepath.Dir(privateLock), filepath.Dir(PrivateAddress), privateRoot, privateState} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return err
		}
	}
	lock, err := os.OpenFile(privateLock, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", privateLock, err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if listening(PrivateAddress) {
		return nil // another process started it while we waited
	}
	// The CRI plugin is not needed and slows start-up.
	conf := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = %q
`, privateRoot, privateState, PrivateAddress)
	if err := os.WriteFile(privateConfig, []byte(conf), 0o600); err != nil {
		return err
	}
	logf, err := os.OpenFile(privateLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	// Not CommandContext: the daemon must outlive this process.
	cmd := exec.Command("containerd", "--config", privateConfig)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	log.Info("started private containerd", "pid", cmd.Process.Pid, "address", PrivateAddress, "log", privateLog)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("containerd exited during start-up (%v); see %s", err, privateLog)
		case <-deadline.C:
			return fmt.Errorf("containerd did not listen on %s within 15s; see %s", PrivateAddress, privateLog)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if listening(PrivateAddress) {
				return nil
			}
		}
	}
}

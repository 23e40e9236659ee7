// Package testdb starts throwaway database servers for integration tests:
// PostgreSQL and MariaDB from the host's packages (Debian's postgresql and
// mariadb-server, installed by scripts/install-deps.sh). Each server gets
// its own data directory in a fresh temporary directory, listens on a free
// port on 127.0.0.1 and on a unix socket in that directory, and is stopped
// (and its directory removed) when the test ends. The packages' own
// services are never used or touched.
//
// As root the servers run as the packages' system users (postgres, mysql),
// which both servers require; otherwise as the current user.
//
// Like internal/testenv, a missing server binary skips the test, or fails
// it under ISOL8_TEST_STRICT=1; under -short every helper skips.
package testdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/isol8/isol8/internal/testenv"
)

// startTimeout bounds a server's start, including initialising its data
// directory (generous: the machine is shared).
const startTimeout = 90 * time.Second

// Server is a running database server.
type Server struct {
	// Kind is "postgres" or "mysql".
	Kind  string
	url   func(db string) string
	admin *sql.DB
	n     atomic.Int64
}

// URL returns the connection URL of database db on the server (a
// postgres:// or mysql:// URL, as isol8's auth.connectionString takes).
func (s *Server) URL(db string) string { return s.url(db) }

// NewDatabase creates a fresh, empty database and returns its URL.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("isol8_test_%d", s.n.Add(1))
	q := "CREATE DATABASE " + name
	if _, err := s.admin.ExecContext(t.Context(), q); err != nil {
		t.Fatalf("testdb: %s: %v", q, err)
	}
	return s.url(name)
}

// DB opens a database/sql handle on the URL's database as the test's
// user, for tests that inspect tables directly; it is closed at the end of
// the test.
func (s *Server) DB(t testing.TB, dbURL string) *sql.DB {
	t.Helper()
	var db *sql.DB
	switch s.Kind {
	case "postgres":
		cfg, err := pgx.ParseConfig(dbURL)
		if err != nil {
			t.Fatalf("testdb: %v", err)
		}
		db = stdlib.OpenDB(*cfg)
	default:
		u, err := url.Parse(dbURL)
		if err != nil {
			t.Fatalf("testdb: %v", err)
		}
		cfg := mysql.NewConfig()
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
		cfg.Net, cfg.Addr, cfg.DBName = "tcp", u.Host, u.Path[1:]
		cfg.ParseTime = true
		c, err := mysql.NewConnector(cfg)
		if err != nil {
			t.Fatalf("testdb: %v", err)
		}
		db = sql.OpenDB(c)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if testenv.Strict() {
		t.Fatalf("requirement missing (ISOL8_TEST_STRICT=1): "+format, args...)
	}
	t.Skipf(format+" (run scripts/install-deps.sh as root, or `make test`)", args...)
}

// runAs is the identity a server runs as.
type runAs struct {
	cred     *syscall.Credential // nil: the current user
	uid, gid int
}

func identity(t testing.TB, name string) runAs {
	t.Helper()
	if os.Geteuid() != 0 {
		return runAs{uid: os.Geteuid(), gid: os.Getegid()}
	}
	u, err := user.Lookup(name)
	if err != nil {
		missing(t, "needs the %s system user (from its Debian package) to run the server as: %v", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return runAs{cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, uid: uid, gid: gid}
}

// workDir makes the server's private directory, owned by who.
func workDir(t testing.TB, prefix string, who runAs) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, who.uid, who.gid); err != nil {
		t.Fatalf("testdb: %v", err)
	}
	return dir
}

// command builds a server-side command running as who, with its output
// appended to log and killed if the test process dies.
func command(who runAs, log *os.File, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "TZ=UTC"}
	cmd.SysProcAttr = sysProcAttr(who.cred)
	return cmd
}

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// logTail is the end of the server's log, for failure messages.
func logTail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// process is a started server.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// start runs cmd and stops it with stopSig when the test ends.
func start(t testing.TB, cmd *exec.Cmd, stopSig syscall.Signal) *process {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("testdb: start %s: %v", cmd.Path, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop(stopSig) })
	return p
}

func (p *process) stop(sig syscall.Signal) {
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// waitReady pings db until it answers, the process exits or time runs out.
func waitReady(p *process, db *sql.DB) error {
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := db.PingContext(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("server exited: %v", p.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s: %w", startTimeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// postgresBin finds the directory of initdb and postgres: Debian keeps them
// per major version under /usr/lib/postgresql; elsewhere they are on PATH.
func postgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) < versionOf(dirs[j]) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no initdb in /usr/lib/postgresql/*/bin or on PATH")
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// PostgreSQL starts a PostgreSQL server with trust authentication for user
// isol8 and returns it.
func PostgreSQL(t testing.TB) *Server {
	t.Helper()
	testenv.Integration(t)
	bin, err := postgresBin()
	if err != nil {
		missing(t, "needs PostgreSQL (Debian package postgresql): %v", err)
	}
	who := identity(t, "postgres")
	dir := workDir(t, "isol8-testdb-pg-", who)
	logPath := filepath.Join(dir, "server.log")
	log := openLog(t, logPath, who)
	data := filepath.Join(dir, "data")
	initdb := command(who, log, filepath.Join(bin, "initdb"), "-D", data, "-U", "isol8", "-A", "trust", "-E", "UTF8", "--no-sync")
	if err := initdb.Run(); err != nil {
		t.Fatalf("testdb: initdb: %v\n%s", err, logTail(logPath))
	}
	var lastErr error
	for range 3 { // the free port may be taken between picking and binding
		port := freePort(t)
		cmd := command(who, log, filepath.Join(bin, "postgres"), "-D", data, "-k", dir, "-p", strconv.Itoa(port),
			"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "shared_buffers=16MB", "-c", "max_connections=60")
		p := start(t, cmd, syscall.SIGINT)
		base := fmt.Sprintf("postgres://isol8@127.0.0.1:%d/", port)
		admin := openPG(t, base+"postgres?sslmode=disable")
		if lastErr = waitReady(p, admin); lastErr == nil {
			return &Server{Kind: "postgres", admin: admin, url: func(db string) string { return base + db + "?sslmode=disable" }}
		}
		p.stop(syscall.SIGINT)
	}
	t.Fatalf("testdb: PostgreSQL: %v\n%s", lastErr, logTail(logPath))
	return nil
}

func openPG(t testing.TB, u string) *sql.DB {
	t.Helper()
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	db := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { db.Close() })
	return db
}

func openLog(t testing.TB, path string, who runAs) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	// MariaDB reopens it itself (--log-error) as its own user.
	if err := os.Chown(path, who.uid, who.gid); err != nil {
		t.Fatalf("testdb: %v", err)
	}
	return f
}

// mariaDBPassword is the test user's password: it has characters that must
// be escaped in a URL, so that connection-string parsing is exercised.
const mariaDBPassword = "s3cr:t@p/w"

// MariaDB starts a MariaDB server and returns it. Tests connect over TCP as
// user isol8 (with a password); the helper itself administers the server
// as root over its unix socket.
func MariaDB(t testing.TB) *Server {
	t.Helper()
	testenv.Integration(t)
	installDB, err1 := exec.LookPath("mariadb-install-db")
	server, err2 := lookSbin("mariadbd")
	if err := errors.Join(err1, err2); err != nil {
		missing(t, "needs MariaDB (Debian package mariadb-server): %v", err)
	}
	who := identity(t, "mysql")
	dir := workDir(t, "isol8-testdb-maria-", who)
	logPath := filepath.Join(dir, "server.log")
	log := openLog(t, logPath, who)
	data := filepath.Join(dir, "data")
	install := command(who, log, installDB, "--no-defaults", "--datadir="+data, "--auth-root-authentication-method=normal",
		"--skip-test-db", "--skip-name-resolve")
	if err := install.Run(); err != nil {
		t.Fatalf("testdb: mariadb-install-db: %v\n%s", err, logTail(logPath))
	}
	socket := filepath.Join(dir, "mariadbd.sock")
	var lastErr error
	for range 3 {
		port := freePort(t)
		cmd := command(who, log, server, "--no-defaults", "--datadir="+data, "--socket="+socket,
			"--port="+strconv.Itoa(port), "--bind-address=127.0.0.1", "--skip-name-resolve",
			"--pid-file="+filepath.Join(dir, "mariadbd.pid"), "--log-error="+logPath,
			"--innodb-buffer-pool-size=32M", "--innodb-flush-log-at-trx-commit=0", "--skip-log-bin")
		p := start(t, cmd, syscall.SIGTERM)
		admin := openMySQLAdmin(t, socket)
		if lastErr = waitReady(p, admin); lastErr == nil {
			for _, q := range []string{
				"CREATE USER 'isol8'@'127.0.0.1' IDENTIFIED BY '" + mariaDBPassword + "'",
				"GRANT ALL PRIVILEGES ON *.* TO 'isol8'@'127.0.0.1'",
			} {
				if _, err := admin.ExecContext(t.Context(), q); err != nil {
					t.Fatalf("testdb: %s: %v", q, err)
				}
			}
			userinfo := url.UserPassword("isol8", mariaDBPassword).String()
			return &Server{Kind: "mysql", admin: admin, url: func(db string) string {
				return fmt.Sprintf("mysql://%s@127.0.0.1:%d/%s", userinfo, port, db)
			}}
		}
		p.stop(syscall.SIGTERM)
	}
	t.Fatalf("testdb: MariaDB: %v\n%s", lastErr, logTail(logPath))
	return nil
}

// lookSbin finds a daemon that may not be on a non-root PATH.
func lookSbin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	p := filepath.Join("/usr/sbin", name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s not found on PATH or in /usr/sbin", name)
	}
	return p, nil
}

func openMySQLAdmin(t testing.TB, socket string) *sql.DB {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr = "root", "unix", socket
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db
}

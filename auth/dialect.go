package auth

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"

	"github.com/isol8/isol8/api"
)

// dialect is what differs between the backends: how to connect, the column
// names, placeholders, timestamp values and the migration lock.
type dialect struct {
	name string
	cols columns
	// numbered placeholders ($1, $2...) instead of "?".
	numbered bool
	// textTime stores timestamps as ISO-8601 text (SQLite); the others
	// take time.Time.
	textTime bool
	// lock serialises migrations between processes on conn and returns
	// its release. inTx says whether lock opened a transaction that the
	// release commits (SQLite), so migrations must not open their own.
	lock func(ctx context.Context, conn *sql.Conn) (release func(commit bool) error, err error)
	inTx bool
	// busy reports an error that only means another process holds the
	// database for now (nil: none are retried).
	busy func(error) bool
}

// columns are the api_keys column names: camelCase in SQLite, as the
// reference server's files have them, snake_case on PostgreSQL and MySQL.
type columns struct {
	ID, Name, KeyHash, KeyPrefix, TenantID, CreatedAt, ExpiresAt, LastUsedAt, Revoked string
}

var (
	camelColumns = columns{"id", "name", "keyHash", "keyPrefix", "tenantId", "createdAt", "expiresAt", "lastUsedAt", "revoked"}
	snakeColumns = columns{"id", "name", "key_hash", "key_prefix", "tenant_id", "created_at", "expires_at", "last_used_at", "revoked"}
)

// migrationLockName identifies the migration lock on the database server.
const migrationLockName = "isol8_auth_migrate"

// migrationLockTimeout bounds the wait for another process's migration.
const migrationLockTimeout = 60 * time.Second

// sqliteBusyTimeoutMs is how long a SQLite statement waits for another
// connection's (or process's) write lock before failing.
const sqliteBusyTimeoutMs = 10000

// bind rewrites "?" placeholders for the dialect.
func (d *dialect) bind(q string) string {
	if !d.numbered {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// timeArg is a timestamp as the dialect stores it, always UTC with
// millisecond precision so that every backend round-trips it exactly.
// SQLite stores TimeFormat text: fixed width, so text order is time order.
func (d *dialect) timeArg(t time.Time) any {
	t = t.UTC().Truncate(time.Millisecond)
	if d.textTime {
		return t.Format(TimeFormat)
	}
	return t
}

// dbTime scans a timestamp stored as time or as ISO-8601 text.
type dbTime struct {
	t     time.Time
	valid bool
}

func (s *dbTime) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		s.valid = false
		return nil
	case time.Time:
		s.t, s.valid = x.UTC(), true
		return nil
	case []byte:
		return s.parse(string(x))
	case string:
		return s.parse(x)
	}
	return fmt.Errorf("timestamp of type %T", v)
}

func (s *dbTime) parse(text string) error {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, text); err == nil {
			s.t, s.valid = t.UTC(), true
			return nil
		}
	}
	return fmt.Errorf("unreadable timestamp %q", text)
}

// openDB connects to the backend conn names.
func openDB(conn string) (*sql.DB, *dialect, error) {
	switch Backend(conn) {
	case "postgres":
		db, err := openPostgres(conn)
		return db, postgresDialect(), err
	case "mysql":
		db, err := openMySQL(conn)
		return db, mysqlDialect(), err
	default:
		db, err := openSQLite(conn)
		return db, sqliteDialect(), err
	}
}

func postgresDialect() *dialect {
	return &dialect{name: "postgres", cols: snakeColumns, numbered: true, lock: pgLock}
}

func mysqlDialect() *dialect {
	return &dialect{name: "mysql", cols: snakeColumns, lock: mysqlLock}
}

func sqliteDialect() *dialect {
	return &dialect{name: "sqlite", cols: camelColumns, textTime: true, lock: sqliteLock, inTx: true, busy: sqliteBusy}
}

// sqliteBusy reports SQLITE_BUSY and SQLITE_LOCKED (with any extended
// code).
func sqliteBusy(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	code := se.Code() & 0xff
	return code == 5 || code == 6
}

func openPostgres(conn string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(conn)
	if err != nil {
		// pgx's message already hides the password.
		return nil, api.InvalidArgumentf("invalid PostgreSQL connection string: %w", err)
	}
	return stdlib.OpenDB(*cfg), nil
}

// openMySQL turns mysql://user:pass@host:port/db?params into the driver's
// configuration. A "socket" parameter selects a unix socket instead of
// host:port; other parameters are the driver's own DSN parameters.
func openMySQL(conn string) (*sql.DB, error) {
	u, err := parseURL(conn)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	socket := q.Get("socket")
	q.Del("socket")
	db := strings.TrimPrefix(u.Path, "/")
	if db == "" || strings.Contains(db, "/") {
		return nil, api.InvalidArgumentf("invalid MySQL connection string %s: the path must name one database", Redact(conn))
	}
	// The driver parses its own parameters; the address and credentials
	// come from the URL so that they need no escaping.
	cfg, err := mysql.ParseDSN("/" + db + "?" + q.Encode())
	if err != nil {
		return nil, api.InvalidArgumentf("invalid MySQL connection string %s: %w", Redact(conn), err)
	}
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	switch {
	case socket != "":
		cfg.Net, cfg.Addr = "unix", socket
	case u.Host == "":
		return nil, api.InvalidArgumentf("invalid MySQL connection string %s: no host (or socket parameter)", Redact(conn))
	default:
		cfg.Net, cfg.Addr = "tcp", u.Host
		if u.Port() == "" {
			cfg.Addr = net.JoinHostPort(u.Hostname(), "3306")
		}
	}
	// Timestamps are DATETIME in UTC; Revoke needs "rows matched", not
	// "rows changed", to tell an unknown id from an already revoked key.
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.ClientFoundRows = true
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, api.InvalidArgumentf("invalid MySQL connection string %s: %w", Redact(conn), err)
	}
	return sql.OpenDB(c), nil
}

// parseURL parses a server URL without echoing a password in its error.
func parseURL(conn string) (*url.URL, error) {
	u, err := url.Parse(conn)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the whole string, password included
		}
		return nil, api.InvalidArgumentf("invalid %s connection string: %w", Backend(conn), err)
	}
	return u, nil
}

func userPassword(user, password string) *url.Userinfo { return url.UserPassword(user, password) }

// openSQLite opens (creating it, mode 0600) the SQLite file at path.
func openSQLite(path string) (*sql.DB, error) {
	switch {
	case strings.TrimSpace(path) == "":
		return nil, api.InvalidArgumentf("auth database path is empty")
	case strings.ContainsAny(path, "?\x00"):
		// The driver would read what follows "?" as its own parameters.
		return nil, api.InvalidArgumentf("invalid SQLite path %q: it must not contain '?'", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create directory of auth database: %w", err)
	}
	// Create the file ourselves so it is private: it names every tenant.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open auth database: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("open auth database: %w", err)
	}
	// WAL lets readers (every authenticated request) run while a key is
	// written; the busy timeout makes writers from other connections and
	// processes wait instead of failing.
	dsn := path + "?_pragma=" + url.QueryEscape("busy_timeout("+strconv.Itoa(sqliteBusyTimeoutMs)+")") +
		"&_pragma=" + url.QueryEscape("journal_mode(WAL)") +
		"&_pragma=" + url.QueryEscape("synchronous(NORMAL)")
	return sql.OpenDB(sqliteConnector{dsn: dsn}), nil
}

// sqliteConnector opens SQLite connections without going through the
// driver registry.
type sqliteConnector struct{ dsn string }

func (c sqliteConnector) Connect(context.Context) (driver.Conn, error) {
	return (&sqlite.Driver{}).Open(c.dsn)
}

func (c sqliteConnector) Driver() driver.Driver { return &sqlite.Driver{} }

// pgLock takes a session-level advisory lock; it is released explicitly,
// or by the server when the connection dies.
func pgLock(ctx context.Context, conn *sql.Conn) (func(bool) error, error) {
	ctx, cancel := context.WithTimeout(ctx, migrationLockTimeout)
	defer cancel()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(hashtext($1))", migrationLockName); err != nil {
		return nil, fmt.Errorf("take migration lock: %w", err)
	}
	return func(bool) error {
		_, err := conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(hashtext($1))", migrationLockName)
		return err
	}, nil
}

// mysqlLock takes a named lock (GET_LOCK), held by this connection.
func mysqlLock(ctx context.Context, conn *sql.Conn) (func(bool) error, error) {
	var got sql.NullInt64
	err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, ?)", migrationLockName, int(migrationLockTimeout.Seconds())).Scan(&got)
	if err != nil {
		return nil, fmt.Errorf("take migration lock: %w", err)
	}
	if !got.Valid || got.Int64 != 1 {
		return nil, fmt.Errorf("take migration lock: another process held it for %s", migrationLockTimeout)
	}
	return func(bool) error {
		_, err := conn.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK(?)", migrationLockName)
		return err
	}, nil
}

// sqliteLock opens a write transaction at once (BEGIN IMMEDIATE), which
// excludes every other writer of the file until it ends; the busy timeout
// makes a second process wait for it.
func sqliteLock(ctx context.Context, conn *sql.Conn) (func(bool) error, error) {
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return nil, fmt.Errorf("take migration lock: %w", err)
	}
	return func(commit bool) error {
		stmt := "ROLLBACK"
		if commit {
			stmt = "COMMIT"
		}
		_, err := conn.ExecContext(context.WithoutCancel(ctx), stmt)
		return err
	}, nil
}

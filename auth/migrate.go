package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// A migration moves the schema from version-1 to version. Migrations are
// applied in order, each once, and recorded in isol8_schema_version (named
// for isol8 so that it cannot clash with another tool's version table in a
// shared PostgreSQL or MySQL database).
//
// To change the schema, append a migration with the next version whose
// statements do the change for each dialect; never edit one that shipped.
type migration struct {
	version int
	name    string
	stmts   func(d *dialect) []string
}

// migrations is the schema history, oldest first.
var migrations = []migration{
	{version: 1, name: "create api_keys", stmts: createAPIKeys},
}

// createAPIKeys makes the key table. IF NOT EXISTS adopts a table the
// reference server created with the same columns.
func createAPIKeys(d *dialect) []string {
	switch d.name {
	case "postgres":
		return []string{
			`CREATE TABLE IF NOT EXISTS api_keys (
				id TEXT PRIMARY KEY,
				name TEXT NOT NULL,
				key_hash TEXT NOT NULL UNIQUE,
				key_prefix TEXT NOT NULL,
				tenant_id TEXT NOT NULL DEFAULT 'default',
				created_at TIMESTAMPTZ NOT NULL,
				expires_at TIMESTAMPTZ NOT NULL,
				last_used_at TIMESTAMPTZ,
				revoked BOOLEAN NOT NULL DEFAULT FALSE)`,
			`CREATE INDEX IF NOT EXISTS idx_api_keys_tenant_id ON api_keys (tenant_id)`,
		}
	case "mysql":
		// Binary collation: hashes and tenant ids compare exactly, not
		// case-insensitively.
		return []string{
			`CREATE TABLE IF NOT EXISTS api_keys (
				id VARCHAR(36) NOT NULL PRIMARY KEY,
				name VARCHAR(256) NOT NULL,
				key_hash CHAR(64) NOT NULL,
				key_prefix VARCHAR(16) NOT NULL,
				tenant_id VARCHAR(128) NOT NULL DEFAULT 'default',
				created_at DATETIME(3) NOT NULL,
				expires_at DATETIME(3) NOT NULL,
				last_used_at DATETIME(3) NULL,
				revoked BOOLEAN NOT NULL DEFAULT FALSE,
				UNIQUE KEY uq_api_keys_key_hash (key_hash),
				KEY idx_api_keys_tenant_id (tenant_id)
			) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
		}
	default:
		return []string{
			`CREATE TABLE IF NOT EXISTS api_keys (
				id TEXT PRIMARY KEY,
				name TEXT NOT NULL,
				keyHash TEXT NOT NULL UNIQUE,
				keyPrefix TEXT NOT NULL,
				tenantId TEXT NOT NULL DEFAULT 'default',
				createdAt TEXT NOT NULL,
				expiresAt TEXT NOT NULL,
				lastUsedAt TEXT,
				revoked INTEGER NOT NULL DEFAULT 0)`,
			`CREATE INDEX IF NOT EXISTS idx_api_keys_tenantId ON api_keys (tenantId)`,
		}
	}
}

// versionTable creates the table that records applied migrations.
func versionTable(d *dialect) string {
	switch d.name {
	case "postgres":
		return `CREATE TABLE IF NOT EXISTS isol8_schema_version (
			version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)`
	case "mysql":
		return `CREATE TABLE IF NOT EXISTS isol8_schema_version (
			version INT NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, applied_at DATETIME(3) NOT NULL)`
	default:
		return `CREATE TABLE IF NOT EXISTS isol8_schema_version (
			version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`
	}
}

// migrate brings the schema to the last of ms. Concurrent callers (other
// processes opening the same database) are serialised by the dialect's
// lock, and each re-reads the version under it, so every migration runs
// exactly once.
func migrate(ctx context.Context, db *sql.DB, d *dialect, ms []migration, now time.Time, log *slog.Logger) (retErr error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	release, err := d.lock(ctx, conn)
	if err != nil {
		return err
	}
	defer func() {
		// On SQLite this commits (or rolls back) the whole migration.
		if err := release(retErr == nil); err != nil && retErr == nil {
			retErr = fmt.Errorf("release migration lock: %w", err)
		}
	}()
	if _, err := conn.ExecContext(ctx, versionTable(d)); err != nil {
		return fmt.Errorf("create version table: %w", err)
	}
	var current int
	if err := conn.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM isol8_schema_version").Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	latest := 0
	if len(ms) > 0 {
		latest = ms[len(ms)-1].version
	}
	if current > latest {
		return fmt.Errorf("auth database schema is version %d, newer than this isol8 knows (%d): upgrade isol8", current, latest)
	}
	for _, m := range ms {
		if m.version <= current {
			continue
		}
		if err := apply(ctx, conn, d, m, now); err != nil {
			return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
		}
		log.Info("auth schema migrated", "backend", d.name, "version", m.version, "migration", m.name)
	}
	return nil
}

// apply runs one migration and records it. PostgreSQL runs both in one
// transaction; MySQL commits DDL implicitly, so there the record follows
// the change; SQLite is already inside the lock's transaction.
func apply(ctx context.Context, conn *sql.Conn, d *dialect, m migration, now time.Time) (retErr error) {
	type execer interface {
		ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	}
	var ex execer = conn
	if !d.inTx {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer func() {
			if retErr != nil {
				retErr = errors.Join(retErr, ignoreDone(tx.Rollback()))
			}
		}()
		ex = tx
		defer func() {
			if retErr == nil {
				retErr = tx.Commit()
			}
		}()
	}
	for _, stmt := range m.stmts(d) {
		if _, err := ex.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	_, err := ex.ExecContext(ctx, d.bind("INSERT INTO isol8_schema_version (version, name, applied_at) VALUES (?, ?, ?)"),
		m.version, m.name, d.timeArg(now))
	return err
}

// ignoreDone drops the error of rolling back a transaction that already
// ended.
func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

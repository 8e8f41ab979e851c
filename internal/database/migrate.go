package database

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

// migrationFiles holds the service's own schema (the backups table the
// backup scripts record into); each resource brings its own migrations as
// one more set (for example notes.Migrations), passed to Migrate, Rollback,
// Status and Pending. A set is one migration per <version>_<name> pair of
// .tx.up.sql and .tx.down.sql files, anywhere in its file system. Every file
// must run unchanged on SQLite and PostgreSQL. The files are bun's format
// (sqlfiles.go reads them; bun's migrator records them). The ".tx" infix runs
// each file in a transaction: both databases have transactional DDL, so a
// failing migration leaves no half-created schema behind.
//
// All sets share one record of applied migrations, keyed by <version>: a
// migration moved from one set to another, file name unchanged, is still
// recognised as applied. Versions must be unique across sets.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// CoreMigrations is the service's own set, the one every call includes.
func CoreMigrations() fs.FS { return migrationFiles }

// migrationsTable is bun's default name for its record of applied migrations.
const migrationsTable = "bun_migrations"

// migrationLockKey is the PostgreSQL advisory lock that serialises migrations
// between replicas starting together. The value is arbitrary but fixed
// ("notes" in ASCII); it must differ from any other advisory lock the app takes.
const migrationLockKey int64 = 0x6e6f746573

// MigrationStatus describes one known migration. GroupID and MigratedAt are
// zero while it is not applied.
type MigrationStatus struct {
	Name       string
	Applied    bool
	GroupID    int64
	MigratedAt time.Time
}

// Migrate applies every pending migration, in name order, as one group (the
// unit Rollback undoes) and returns the names it applied: none when the
// schema is already current. On PostgreSQL it needs two pooled connections:
// one holds the migration lock while another runs the migrations.
func Migrate(ctx context.Context, db *bun.DB, log *slog.Logger, sets ...fs.FS) (applied []string, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMigrator(db, sets)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	unlock, err := lock(ctx, db, log)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	defer func() {
		if uerr := unlock(); uerr != nil && err == nil {
			err = fmt.Errorf("migrate: release lock: %w", uerr)
		}
	}()

	if err := m.Init(ctx); err != nil {
		return nil, fmt.Errorf("migrate: create migration tables: %w", err)
	}
	group, err := m.Migrate(ctx)
	applied = completed(group, err)
	for _, name := range applied {
		log.InfoContext(ctx, "migration applied", "migration", name, "dialect", Dialect(db))
	}
	if err != nil {
		return applied, fmt.Errorf("migrate: %w", err)
	}
	if len(applied) == 0 {
		log.DebugContext(ctx, "database schema is current", "dialect", Dialect(db))
	}
	return applied, nil
}

// Rollback undoes the most recently applied group of migrations, newest first,
// and returns the names it rolled back: none when nothing is applied.
func Rollback(ctx context.Context, db *bun.DB, sets ...fs.FS) (rolledBack []string, err error) {
	m, err := newMigrator(db, sets)
	if err != nil {
		return nil, fmt.Errorf("rollback migrations: %w", err)
	}
	unlock, err := lock(ctx, db, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, fmt.Errorf("rollback migrations: %w", err)
	}
	defer func() {
		if uerr := unlock(); uerr != nil && err == nil {
			err = fmt.Errorf("rollback migrations: release lock: %w", uerr)
		}
	}()

	if err := m.Init(ctx); err != nil {
		return nil, fmt.Errorf("rollback migrations: create migration tables: %w", err)
	}
	group, err := m.Rollback(ctx)
	// bun undoes a group from its last migration to its first; report that order.
	rolledBack = make([]string, 0, len(group.Migrations))
	for i := len(group.Migrations) - 1; i >= 0; i-- {
		rolledBack = append(rolledBack, group.Migrations[i].String())
	}
	if err != nil {
		// Which one failed is in err; do not claim any as rolled back.
		return nil, fmt.Errorf("rollback migrations: %w", err)
	}
	return rolledBack, nil
}

// Status lists every known migration, oldest first, with whether it is applied.
// It only reads: on a database never migrated, everything is pending.
func Status(ctx context.Context, db *bun.DB, sets ...fs.FS) ([]MigrationStatus, error) {
	ms, err := migrations(sets)
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	// bun's status query fails on a missing table; a fresh database is not an
	// error, and a health check should not create tables as a side effect.
	exists, err := tableExists(ctx, db, migrationsTable)
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	sorted := ms.Sorted()
	if exists {
		sorted, err = migrate.NewMigrator(db, ms).MigrationsWithStatus(ctx)
		if err != nil {
			return nil, fmt.Errorf("migration status: %w", err)
		}
	}

	out := make([]MigrationStatus, 0, len(sorted))
	for _, m := range sorted {
		s := MigrationStatus{Name: m.String(), Applied: m.IsApplied()}
		if s.Applied {
			s.GroupID = m.GroupID
			s.MigratedAt = m.MigratedAt.UTC()
		}
		out = append(out, s)
	}
	return out, nil
}

// Pending counts the migrations not yet applied; zero means the schema is current.
func Pending(ctx context.Context, db *bun.DB, sets ...fs.FS) (int, error) {
	all, err := Status(ctx, db, sets...)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range all {
		if !s.Applied {
			n++
		}
	}
	return n, nil
}

// migrations is the core set and sets as one list, in version order.
func migrations(sets []fs.FS) (*migrate.Migrations, error) {
	ms := migrate.NewMigrations()
	seen := make(map[string]string)
	for _, set := range append([]fs.FS{migrationFiles}, sets...) {
		if err := addSQLFiles(ms, set, seen); err != nil {
			return nil, fmt.Errorf("load embedded migrations: %w", err)
		}
	}
	return ms, nil
}

func newMigrator(db *bun.DB, sets []fs.FS) (*migrate.Migrator, error) {
	ms, err := migrations(sets)
	if err != nil {
		return nil, err
	}
	// By default bun records a migration as applied before running it, so a
	// failed one would never be retried; record it only once it succeeded.
	// The SQL files run through sqlfiles.go, not bun's own runner, so
	// migrator options that act there would do nothing: the
	// BeforeMigration and AfterMigration hooks and WithTemplateData. Run such
	// work in sqlMigration instead.
	return migrate.NewMigrator(db, ms, migrate.WithMarkAppliedOnSuccess(true)), nil
}

// completed returns the names in group that really were applied. On failure
// bun's group ends with the migration that failed, which is not applied.
func completed(group *migrate.MigrationGroup, err error) []string {
	var ms migrate.MigrationSlice
	if group != nil {
		ms = group.Migrations
	}
	if err != nil && len(ms) > 0 {
		ms = ms[:len(ms)-1]
	}
	names := make([]string, 0, len(ms))
	for _, m := range ms {
		names = append(names, m.String())
	}
	return names
}

// lock makes concurrent Migrate and Rollback calls take turns and returns the
// function releasing the lock.
//
// PostgreSQL: a transaction-scoped advisory lock. Other replicas wait for it
// rather than fail, and the server drops it if this process dies, unlike bun's
// table-based Migrator.Lock, which a crash leaves held until someone deletes
// the row by hand.
//
// SQLite has no such lock and none is taken: it serves a single node, every
// migration runs in its own write transaction, and a racing second migrator
// fails loudly on CREATE TABLE, rather than being wedged by a stale lock row.
//
// A wait is logged once, when it starts: a replica (or a worker) waiting
// for another's migrations is otherwise silent for as long as they take.
func lock(ctx context.Context, db *bun.DB, log *slog.Logger) (unlock func() error, err error) {
	if Dialect(db) != "postgres" {
		return lockSQLite(ctx, db, log)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("take migration lock: %w", err)
	}
	// Waiting for a replica that is migrating is not a slow query: the
	// pool's statement_timeout (database.statement_timeout, meant for
	// requests), or a lock_timeout in the URL, would fail this replica's
	// start whenever the other's migrations take longer. ctx still bounds
	// the wait; SET LOCAL ends with the transaction.
	for _, q := range []string{"SET LOCAL statement_timeout = 0", "SET LOCAL lock_timeout = 0"} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return nil, errors.Join(fmt.Errorf("take migration lock: %w", err), tx.Rollback())
		}
	}
	var got bool
	if err := tx.QueryRowContext(ctx, "SELECT pg_try_advisory_xact_lock(?)", migrationLockKey).Scan(&got); err != nil {
		return nil, errors.Join(fmt.Errorf("take migration lock: %w", err), tx.Rollback())
	}
	if !got {
		log.Info(waitingForLock, "dialect", "postgres")
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?)", migrationLockKey); err != nil {
			return nil, errors.Join(fmt.Errorf("take migration lock: %w", err), tx.Rollback())
		}
	}
	// Ending the transaction releases the lock; nothing was written in it.
	return tx.Rollback, nil
}

// waitingForLock is the line a start that waits for the migration lock logs once.
const waitingForLock = "waiting for the migration lock: another process is migrating this database"

// lockSQLite serialises migrations between processes sharing one SQLite
// file (the workers of a master start together) with an flock(2) on a file
// beside it: SQLite has no advisory lock, and two processes creating the
// same table would make one fail. A lock of its own, not one on the
// database file, whose POSIX locks SQLite manages and a stray close drops.
func lockSQLite(ctx context.Context, db *bun.DB, log *slog.Logger) (unlock func() error, err error) {
	var file string
	if err := db.QueryRowContext(ctx, "SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&file); err != nil {
		return nil, fmt.Errorf("take migration lock: %w", err)
	}
	if file == "" { // in memory: no other process can see it
		return func() error { return nil }, nil
	}
	f, err := os.OpenFile(file+"-migrate.lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("take migration lock: %w", err)
	}
	// Tried, not waited for in the kernel: a blocking flock ignores ctx, and
	// a worker retired by its master while another process migrates must
	// be able to give up.
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f.Close, nil // closing the file releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errors.Join(fmt.Errorf("take migration lock: %w", err), f.Close())
		}
		if wait == time.Millisecond {
			log.Info(waitingForLock, "dialect", "sqlite", "lock_file", file+"-migrate.lock")
		}
		select {
		case <-ctx.Done():
			return nil, errors.Join(fmt.Errorf("take migration lock: another process holds it: %w", ctx.Err()), f.Close())
		case <-time.After(wait):
		}
	}
}

func tableExists(ctx context.Context, db *bun.DB, name string) (bool, error) {
	query := "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?"
	if Dialect(db) == "postgres" {
		// to_regclass resolves through search_path, like unqualified queries do.
		query = "SELECT to_regclass(?) IS NOT NULL"
	}
	var exists bool
	if err := db.QueryRowContext(ctx, query, name).Scan(&exists); err != nil {
		return false, fmt.Errorf("check table %s exists: %w", name, err)
	}
	return exists, nil
}

package database

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/uptrace/bun"

	"github.com/prodready/service/internal/servicetest"
)

const createNotes = "20261125000001_create_notes"

// resourceSet is a resource's migrations as their own set, the way notes
// ships them: the notes table's first migration, copied here so that the
// migrator's tests need no resource package.
var resourceSet = fstest.MapFS{
	"migrations/" + createNotes + ".tx.up.sql": {Data: []byte(`CREATE TABLE notes (
    id         TEXT PRIMARY KEY,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL DEFAULT '',
    version    BIGINT NOT NULL CHECK (version >= 1),
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL
);`)},
	"migrations/" + createNotes + ".tx.down.sql": {Data: []byte("DROP TABLE notes;")},
}

// allMigrations lists the core migrations and resourceSet's by name, in
// order, so the tests hold whatever migrations the build carries.
func allMigrations(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, set := range []fs.FS{migrationFiles, resourceSet} {
		files, err := fs.Glob(set, "migrations/*.tx.up.sql")
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			names = append(names, strings.TrimSuffix(path.Base(f), ".tx.up.sql"))
		}
	}
	slices.Sort(names)
	return names
}

// Every migration test runs on both databases: the SQL files must be portable.
func eachDialect(t *testing.T, test func(t *testing.T, open func(t *testing.T) *bun.DB)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		test(t, func(t *testing.T) *bun.DB {
			return mustOpen(t, Options{SQLitePath: filepath.Join(t.TempDir(), "notes.db"), BusyTimeout: 5 * time.Second})
		})
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		test(t, func(t *testing.T) *bun.DB {
			return mustOpen(t, Options{URL: servicetest.PostgresURL(t)})
		})
	})
}

func TestMigrate_Lifecycle(t *testing.T) {
	eachDialect(t, func(t *testing.T, open func(t *testing.T) *bun.DB) {
		ctx := t.Context()
		db := open(t)

		// A database never migrated: everything pending, nothing created by asking.
		assertStatus(t, db, false, 0)
		if exists, _ := tableExists(ctx, db, migrationsTable); exists {
			t.Error("Status created the migrations table; it must only read")
		}

		var logs bytes.Buffer
		applied, err := Migrate(ctx, db, slog.New(slog.NewTextHandler(&logs, nil)), resourceSet)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(applied, allMigrations(t)) {
			t.Errorf("first Migrate applied %v; want %v", applied, allMigrations(t))
		}
		if !strings.Contains(logs.String(), "migration applied") || !strings.Contains(logs.String(), createNotes) {
			t.Errorf("log %q; want a line per applied migration", logs.String())
		}
		assertStatus(t, db, true, 1)

		applied, err = Migrate(ctx, db, nil, resourceSet) // nil logger is allowed
		if err != nil || len(applied) != 0 {
			t.Errorf("second Migrate = %v, %v; want nothing applied", applied, err)
		}

		rolled, err := Rollback(ctx, db, resourceSet) // the whole group, newest first
		want := slices.Clone(allMigrations(t))
		slices.Reverse(want)
		if err != nil || !slices.Equal(rolled, want) {
			t.Fatalf("Rollback = %v, %v; want %v", rolled, err, want)
		}
		assertStatus(t, db, false, 0)
		if exists, _ := tableExists(ctx, db, "notes"); exists {
			t.Error("notes table still exists after rollback")
		}
		rolled, err = Rollback(ctx, db, resourceSet)
		if err != nil || len(rolled) != 0 {
			t.Errorf("Rollback with nothing applied = %v, %v; want nothing", rolled, err)
		}

		if applied, err := Migrate(ctx, db, nil, resourceSet); err != nil || len(applied) != len(allMigrations(t)) {
			t.Errorf("Migrate after rollback = %v, %v; want them applied again", applied, err)
		}
		assertStatus(t, db, true, 1)
	})
}

// assertStatus checks Status and Pending agree with every migration being
// applied (in group) or none.
func assertStatus(t *testing.T, db *bun.DB, applied bool, group int64) {
	t.Helper()
	all, err := Status(t.Context(), db, resourceSet)
	if err != nil {
		t.Fatal(err)
	}
	names := allMigrations(t)
	if len(all) != len(names) {
		t.Fatalf("Status = %+v; want %d migrations", all, len(names))
	}
	for i, m := range all {
		if m.Name != names[i] || m.Applied != applied || m.GroupID != group {
			t.Fatalf("Status = %+v; want %s applied=%v group=%d", all, names[i], applied, group)
		}
	}
	if at := all[0].MigratedAt; applied && (time.Since(at).Abs() > time.Minute || at.Location() != time.UTC) {
		t.Errorf("MigratedAt = %v; want about now, in UTC", at)
	} else if !applied && !at.IsZero() {
		t.Errorf("MigratedAt = %v for a pending migration; want zero", at)
	}
	want := len(names)
	if applied {
		want = 0
	}
	if n, err := Pending(t.Context(), db, resourceSet); err != nil || n != want {
		t.Errorf("Pending = %d, %v; want %d", n, err, want)
	}
}

func TestMigrate_FailedMigrationStaysPending(t *testing.T) {
	eachDialect(t, func(t *testing.T, open func(t *testing.T) *bun.DB) {
		ctx := t.Context()
		db := open(t)
		// A stray table makes CREATE TABLE notes fail.
		if _, err := db.ExecContext(ctx, "CREATE TABLE notes (x INTEGER)"); err != nil {
			t.Fatal(err)
		}
		applied, err := Migrate(ctx, db, nil, resourceSet)
		if err == nil || !strings.Contains(err.Error(), "migrate: ") || len(applied) != 0 {
			t.Fatalf("Migrate = %v, %v; want an error and nothing applied", applied, err)
		}
		// bun's default would have recorded it as applied before it ran.
		if n, err := Pending(ctx, db, resourceSet); err != nil || n != len(allMigrations(t)) {
			t.Fatalf("Pending = %d, %v; want the failed migration (and those after it) still pending", n, err)
		}
		// Once the cause is fixed, the next start applies it.
		if _, err := db.ExecContext(ctx, "DROP TABLE notes"); err != nil {
			t.Fatal(err)
		}
		if applied, err := Migrate(ctx, db, nil, resourceSet); err != nil || len(applied) != len(allMigrations(t)) {
			t.Errorf("Migrate after fix = %v, %v; want them applied", applied, err)
		}
	})
}

func TestRollback_FailureKeepsMigrationApplied(t *testing.T) {
	eachDialect(t, func(t *testing.T, open func(t *testing.T) *bun.DB) {
		ctx := t.Context()
		db := open(t)
		if _, err := Migrate(ctx, db, nil, resourceSet); err != nil {
			t.Fatal(err)
		}
		// With the table already gone, the down migration's DROP TABLE fails.
		if _, err := db.ExecContext(ctx, "DROP TABLE notes"); err != nil {
			t.Fatal(err)
		}
		rolled, err := Rollback(ctx, db, resourceSet)
		if err == nil || len(rolled) != 0 {
			t.Fatalf("Rollback = %v, %v; want an error and nothing rolled back", rolled, err)
		}
		st, err := Status(ctx, db, resourceSet)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range st {
			if m.Name == createNotes && !m.Applied {
				t.Errorf("%s is no longer recorded as applied after its down migration failed", createNotes)
			}
		}
	})
}

// Timestamps must come back as the same instant on both databases. bun writes
// UTC text with microseconds; PostgreSQL's timestamptz returns it in the
// process's local zone, SQLite as text bun parses into a fixed +00:00 zone.
// Callers therefore compare with Equal, or normalise with UTC() as the notes
// store does.
func TestTimestampsRoundTrip(t *testing.T) {
	type noteRow struct {
		bun.BaseModel `bun:"table:notes"`
		ID            string    `bun:"id,pk"`
		Title         string    `bun:"title"`
		Version       int64     `bun:"version"`
		CreatedAt     time.Time `bun:"created_at"`
		UpdatedAt     time.Time `bun:"updated_at"`
	}
	eachDialect(t, func(t *testing.T, open func(t *testing.T) *bun.DB) {
		ctx := t.Context()
		db := open(t)
		if _, err := Migrate(ctx, db, nil, resourceSet); err != nil {
			t.Fatal(err)
		}
		tests := []time.Time{
			time.Date(2026, 11, 25, 1, 2, 3, 123456789, time.FixedZone("EST", -5*3600)),
			time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC),
			time.Date(2038, 1, 19, 3, 14, 8, 0, time.UTC), // past 32-bit time_t
		}
		for i, in := range tests {
			id := fmt.Sprint("ts", i)
			row := noteRow{ID: id, Title: "t", Version: 1, CreatedAt: in, UpdatedAt: in}
			if _, err := db.NewInsert().Model(&row).Exec(ctx); err != nil {
				t.Fatal(err)
			}
			var got noteRow
			if err := db.NewSelect().Model(&got).Where("id = ?", id).Scan(ctx); err != nil {
				t.Fatal(err)
			}
			// Microseconds survive; finer digits are cut, never rounded.
			if want := in.Truncate(time.Microsecond); !got.CreatedAt.Equal(want) {
				t.Errorf("wrote %v, read %v; want %v", in, got.CreatedAt, want)
			}
		}
	})
}

// Replicas starting together all call Migrate; on PostgreSQL the advisory
// lock makes them take turns, so exactly one applies and none fails.
func TestMigrate_ConcurrentPostgreSQL(t *testing.T) {
	url := servicetest.PostgresURL(t)
	const replicas = 4
	var (
		mu      sync.Mutex
		applied []string
		wg      sync.WaitGroup
	)
	for i := range replicas {
		db := mustOpen(t, Options{URL: url}) // one pool per replica
		wg.Go(func() {
			names, err := Migrate(t.Context(), db, nil, resourceSet)
			if err != nil {
				t.Errorf("replica %d: %v", i, err)
			}
			mu.Lock()
			applied = append(applied, names...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if !slices.Equal(applied, allMigrations(t)) {
		t.Errorf("replicas applied %v together; want %v once", applied, allMigrations(t))
	}
}

// A replica that starts while another migrates waits for it, however
// long that takes against database.statement_timeout: the timeout is for
// requests, and failing the start would only make the platform restart it.
func TestMigrate_WaitsPastTheStatementTimeoutForAReplicaMigrating(t *testing.T) {
	url := servicetest.PostgresURL(t)
	other := mustOpen(t, Options{URL: url})
	tx, err := other.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(t.Context(), "SELECT pg_advisory_xact_lock(?)", migrationLockKey); err != nil {
		t.Fatal(err)
	}
	// The lock is released only once a waiter is seen and three statement
	// timeouts more have passed, so Migrate has surely waited past one.
	const timeout = 300 * time.Millisecond
	released := make(chan time.Time, 1)
	go func() {
		defer func() { _ = tx.Rollback() }()
		for range 200 {
			var waiting int
			if err := other.NewRaw("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").Scan(context.Background(), &waiting); err == nil && waiting > 0 {
				break
			}
			time.Sleep(25 * time.Millisecond)
		}
		time.Sleep(3 * timeout)
		released <- time.Now()
	}()
	db := mustOpen(t, Options{URL: url, StatementTimeout: timeout})
	logs := &servicetest.LogBuffer{}
	names, err := Migrate(t.Context(), db, slog.New(slog.NewJSONHandler(logs, nil)), resourceSet)
	done := time.Now()
	if n := len(logs.Records(t, "waiting for the migration lock: another process is migrating this database")); n != 1 {
		t.Errorf("%d lines saying the start waits for the migration lock, want 1 (the wait is otherwise silent):\n%s", n, logs)
	}
	if err != nil {
		t.Fatalf("Migrate while another replica held the lock (statement timeout %s): %v; want it to wait", timeout, err)
	}
	if at := <-released; done.Before(at) {
		t.Errorf("Migrate returned before the other replica released the lock")
	}
	if !slices.Equal(names, allMigrations(t)) {
		t.Errorf("applied %v; want %v", names, allMigrations(t))
	}
	var setting string
	if err := db.NewRaw("SHOW statement_timeout").Scan(t.Context(), &setting); err != nil || setting != "300ms" {
		t.Errorf("after Migrate the pool's statement_timeout is %q (%v); want 300ms still (SET LOCAL ends with the lock's transaction)", setting, err)
	}
}

// Every function reports a lowercase, contextual error when the database is gone.
func TestMigrate_ClosedDatabase(t *testing.T) {
	db := mustOpen(t, Options{SQLitePath: filepath.Join(t.TempDir(), "notes.db")})
	_ = db.Close()
	ctx := context.Background()
	checks := map[string]error{}
	_, checks["Migrate"] = Migrate(ctx, db, nil, resourceSet)
	_, checks["Rollback"] = Rollback(ctx, db, resourceSet)
	_, checks["Status"] = Status(ctx, db, resourceSet)
	_, checks["Pending"] = Pending(ctx, db, resourceSet)
	for name, err := range checks {
		if err == nil || !strings.Contains(err.Error(), "sql: database is closed") {
			t.Errorf("%s on a closed database: %v; want the cause wrapped", name, err)
		}
	}
}

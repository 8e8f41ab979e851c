package backup_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/prodready/service/internal/backup"
	"github.com/prodready/service/internal/database"
	"github.com/prodready/service/internal/health"
	"github.com/prodready/service/internal/servicetest"
)

// The check reads what scripts/backup/ writes, on both databases.
func eachDialect(t *testing.T, test func(t *testing.T, db *bun.DB)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		test(t, open(t, database.Options{SQLitePath: filepath.Join(t.TempDir(), "notes.db"), BusyTimeout: 5 * time.Second}, true))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		test(t, open(t, database.Options{URL: servicetest.PostgresURL(t)}, true))
	})
}

func open(t *testing.T, o database.Options, migrate bool) *bun.DB {
	t.Helper()
	db, err := database.Open(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if migrate {
		if _, err := database.Migrate(t.Context(), db, nil); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// record inserts a row as the scripts do (lib.sh record_backup): plain SQL,
// times as "2026-11-25 02:00:00+00:00" text.
func record(t *testing.T, db *bun.DB, id string, completed time.Time, verified bool) {
	t.Helper()
	ts := func(tm time.Time) string { return tm.UTC().Format("2006-01-02 15:04:05+00:00") }
	var verifiedAt any
	if verified {
		verifiedAt = ts(completed.Add(time.Minute))
	}
	_, err := db.ExecContext(t.Context(), `INSERT INTO backups (id, kind, file_name, sha256, size_bytes, schema_version,
		started_at, completed_at, verified_at, duration_ms, row_counts)
		VALUES (?, 'postgres', ?, 'ab12', 5431, '20261125000002', ?, ?, ?, 1200, '{"public.notes": 3}')`,
		id, id+".pgdump", ts(completed.Add(-time.Second)), ts(completed), verifiedAt)
	if err != nil {
		t.Fatal(err)
	}
}

func TestAgeCheck(t *testing.T) {
	const warn, fail = 26 * time.Hour, 50 * time.Hour
	tests := []struct {
		name       string
		rows       map[string]time.Duration // id -> age at now; verified
		unverified map[string]time.Duration
		status     health.Status
		observed   any
		output     string
	}{
		{name: "none recorded", status: health.Fail, output: "no verified backup recorded"},
		{name: "only an unverified backup", unverified: map[string]time.Duration{"u": time.Hour},
			status: health.Fail, output: "no verified backup recorded"},
		{name: "fresh", rows: map[string]time.Duration{"a": time.Hour}, status: health.Pass, observed: int64(3600)},
		{name: "newest of several counts", rows: map[string]time.Duration{"old": 80 * time.Hour, "new": 2 * time.Hour},
			unverified: map[string]time.Duration{"newer but unverified": time.Minute}, status: health.Pass, observed: int64(7200)},
		{name: "old", rows: map[string]time.Duration{"a": 27 * time.Hour}, status: health.Warn, observed: int64(97200),
			output: "newest verified backup is 27h0m0s old (warn after 26h0m0s)"},
		{name: "older", rows: map[string]time.Duration{"a": 51 * time.Hour}, status: health.Fail, observed: int64(183600),
			output: "newest verified backup is 51h0m0s old (fail after 50h0m0s)"},
		{name: "from the future (clock skew)", rows: map[string]time.Duration{"a": -time.Hour}, status: health.Pass, observed: int64(0)},
	}
	eachDialect(t, func(t *testing.T, db *bun.DB) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if _, err := db.ExecContext(t.Context(), "DELETE FROM backups"); err != nil {
					t.Fatal(err)
				}
				for id, age := range tt.rows {
					record(t, db, id, now.Add(-age), true)
				}
				for id, age := range tt.unverified {
					record(t, db, id, now.Add(-age), false)
				}
				c := backup.AgeCheck(db, warn, fail, func() time.Time { return now })
				if c.Name != "backup:age" || c.ComponentType != "datastore" || c.Timeout <= 0 {
					t.Errorf("check %q/%q timeout %v; want backup:age, datastore, a timeout", c.Name, c.ComponentType, c.Timeout)
				}
				r := c.Run(t.Context())
				if r.Status != tt.status || r.Output != tt.output {
					t.Errorf("Run = %s %q; want %s %q", r.Status, r.Output, tt.status, tt.output)
				}
				if tt.observed != nil && (r.ObservedValue != tt.observed || r.ObservedUnit != "s") {
					t.Errorf("observed %v %s; want %v s", r.ObservedValue, r.ObservedUnit, tt.observed)
				}
			})
		}
	})
}

func TestNewest(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *bun.DB) {
		if _, err := backup.Newest(t.Context(), db, backup.MethodDump); !errors.Is(err, backup.ErrNone) {
			t.Fatalf("Newest on an empty table: %v; want ErrNone", err)
		}
		completed := now.Add(-3 * time.Hour)
		// Recorded as backup.sh of the previous release does, without a
		// method: the column's default makes it a dump.
		record(t, db, "notes-api-postgres-20261125T090000Z", completed, true)
		// A newer pgBackRest backup is not the newest dump.
		if _, err := db.ExecContext(t.Context(), `INSERT INTO backups (id, kind, method, file_name, sha256, size_bytes, schema_version,
			started_at, completed_at, verified_at, duration_ms) VALUES ('notes-api-pgbackrest-20261125-100000F', 'postgres', 'pgbackrest',
			'20261125-100000F', '', 100, '20261202000001', '2026-11-25 10:00:00+00:00', '2026-11-25 10:01:00+00:00', '2026-11-25 10:02:00+00:00', 60000)`); err != nil {
			t.Fatal(err)
		}
		if e, err := backup.Newest(t.Context(), db, backup.MethodPgBackRest); err != nil || e.FileName != "20261125-100000F" || e.Method != backup.MethodPgBackRest {
			t.Errorf("Newest pgBackRest backup = %+v, %v; want 20261125-100000F", e, err)
		}
		e, err := backup.Newest(t.Context(), db, backup.MethodDump)
		if err != nil {
			t.Fatal(err)
		}
		if e.ID != "notes-api-postgres-20261125T090000Z" || e.Method != backup.MethodDump || e.FileName != e.ID+".pgdump" || e.SizeBytes != 5431 ||
			e.SchemaVersion != "20261125000002" || e.DurationMS != 1200 || e.RowCounts != `{"public.notes": 3}` {
			t.Errorf("Newest = %+v", e)
		}
		if !e.CompletedAt.Equal(completed) || e.CompletedAt.Location() != time.UTC || !e.VerifiedAt.Equal(completed.Add(time.Minute)) {
			t.Errorf("times completed %v verified %v; want %v and a minute later, in UTC", e.CompletedAt, e.VerifiedAt.Time, completed)
		}
	})
}

// Without the backups table (a schema not migrated), the check fails with a
// sentence for monitors, never the driver's error.
func TestAgeCheck_Unreadable(t *testing.T) {
	db := open(t, database.Options{SQLitePath: filepath.Join(t.TempDir(), "notes.db")}, false)
	r := backup.AgeCheck(db, time.Hour, 2*time.Hour, nil).Run(t.Context())
	if r.Status != health.Fail || r.Output != "cannot read the backup records (is the schema migrated?)" {
		t.Errorf("Run = %s %q; want fail with a sanitized sentence", r.Status, r.Output)
	}

	db = open(t, database.Options{SQLitePath: filepath.Join(t.TempDir(), "notes.db")}, true)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	r = backup.AgeCheck(db, time.Hour, 2*time.Hour, nil).Run(ctx)
	if r.Status != health.Fail || !strings.HasPrefix(r.Output, "timed out") {
		t.Errorf("Run with an expired context = %s %q; want fail, timed out", r.Status, r.Output)
	}
}

// TestArchiveCheck_ArchivingOffOrUnreadable: in continuous mode on a
// PostgreSQL whose archive_mode is off (the shared test server), backup:age
// fails saying there is no point-in-time recovery; on SQLite, which has no
// archiver to read, it fails saying so. The archiving cluster itself runs
// in cmd/api's PITR test.
func TestArchiveCheck_ArchivingOffOrUnreadable(t *testing.T) {
	for _, tt := range []struct {
		name, output string
		db           func(t *testing.T) *bun.DB
	}{
		{"archive_mode off", "archive_mode is off: no WAL is archived, so there is no point-in-time recovery",
			func(t *testing.T) *bun.DB { return open(t, database.Options{URL: servicetest.PostgresURL(t)}, true) }},
		{"no archiver", "cannot read pg_stat_archiver",
			func(t *testing.T) *bun.DB {
				return open(t, database.Options{SQLitePath: filepath.Join(t.TempDir(), "notes.db")}, true)
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := backup.ArchiveCheck(tt.db(t), time.Minute, time.Hour, 26*time.Hour, 50*time.Hour, nil)
			if r := c.Run(t.Context()); r.Status != health.Fail || r.Output != tt.output {
				t.Errorf("%s %q, want fail %q", r.Status, r.Output, tt.output)
			}
		})
	}
}

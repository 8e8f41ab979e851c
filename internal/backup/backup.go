// Package backup reads the service's record of verified backups, the backups
// table, and turns the age of the newest one into the status route's
// "backup:age" check (AgeCheck); in continuous mode the same check judges the
// newest archived WAL segment (ArchiveCheck) or Litestream's newest
// replicated position (LitestreamCheck, continuous.go).
//
// The backups themselves are taken, verified and recorded by the scripts in
// scripts/backup/ (docs/BACKUP.md), which run where pg_dump and sqlite3 are,
// on a schedule. This package only reads: a backup that failed, or that
// nobody verified, never appears here, so the check turns red when the
// nightly job has silently stopped working.
package backup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/prodready/service/internal/health"
)

// CheckName is the status route's name for the backup freshness check.
const CheckName = "backup:age"

// CheckTimeout is the check's own deadline: one indexed-size query on a tiny
// table. The status route may override Check.Timeout.
const CheckTimeout = time.Second

// Methods of the backups recorded in the backups table.
const (
	// MethodDump is a logical dump that scripts/backup/backup.sh restored
	// into a scratch copy and found identical to what it read.
	MethodDump = "dump"
	// MethodPgBackRest is a pgBackRest base backup (full, diff or incr)
	// that `pgbackrest verify` checked, recorded by pgbackrest-backup.sh.
	MethodPgBackRest = "pgbackrest"
)

// Entry is one row of the backups table (migrations
// 20261125000002_create_backups and 20261202000001_add_backups_method): a
// backup that scripts/backup/ verified.
type Entry struct {
	bun.BaseModel `bun:"table:backups"`

	ID            string       `bun:"id,pk"`          // the backup's name: notes-api-postgres-20261125T020000Z
	Kind          string       `bun:"kind,notnull"`   // the database: postgres or sqlite
	Method        string       `bun:"method,notnull"` // MethodDump or MethodPgBackRest
	FileName      string       `bun:"file_name,notnull"`
	SHA256        string       `bun:"sha256,notnull"`
	SizeBytes     int64        `bun:"size_bytes,notnull"`
	SchemaVersion string       `bun:"schema_version,notnull"` // bun_migrations.name of the newest migration applied: 20261125000002
	StartedAt     time.Time    `bun:"started_at,notnull"`
	CompletedAt   time.Time    `bun:"completed_at,notnull"` // what the backup's age counts from
	VerifiedAt    bun.NullTime `bun:"verified_at"`
	DurationMS    int64        `bun:"duration_ms,notnull"`
	RowCounts     string       `bun:"row_counts,notnull"` // JSON object: table -> rows
}

// ErrNone means no verified backup was ever recorded.
var ErrNone = errors.New("no verified backup recorded")

// Newest returns the verified backup made by method that completed last, or
// ErrNone. Times come back in UTC whichever database answered.
func Newest(ctx context.Context, db *bun.DB, method string) (Entry, error) {
	var e Entry
	err := db.NewSelect().Model(&e).
		Where("verified_at IS NOT NULL").
		Where("method = ?", method).
		OrderExpr("completed_at DESC").
		Limit(1).
		Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return Entry{}, ErrNone
	}
	if err != nil {
		return Entry{}, fmt.Errorf("read newest backup: %w", err)
	}
	e.StartedAt = e.StartedAt.UTC()
	e.CompletedAt = e.CompletedAt.UTC()
	if !e.VerifiedAt.IsZero() {
		e.VerifiedAt.Time = e.VerifiedAt.UTC()
	}
	return e, nil
}

// AgeCheck returns the "backup:age" check of dump mode. It passes while the
// newest verified logical dump completed less than warnAfter ago, warns after that, and
// fails past failAfter or when no verified backup was ever recorded. Its
// observed value is that age in whole seconds. now is time.Now outside tests
// (nil means time.Now).
//
// The output says how old the backup is and which threshold it crossed,
// never a driver error: the status route is read by monitors, not operators.
func AgeCheck(db *bun.DB, warnAfter, failAfter time.Duration, now func() time.Time) health.Check {
	if now == nil {
		now = time.Now
	}
	return health.Check{
		Name:          CheckName,
		ComponentType: "datastore",
		Timeout:       CheckTimeout,
		Run: func(ctx context.Context) health.Result {
			e, err := Newest(ctx, db, MethodDump)
			switch {
			case errors.Is(err, ErrNone):
				return health.Result{Status: health.Fail, Output: "no verified backup recorded"}
			case ctx.Err() != nil:
				return health.Result{Status: health.Fail, Output: "timed out reading the backup records"}
			case err != nil:
				// Most likely the backups table is missing: the
				// database:migrations check says so with details.
				return health.Result{Status: health.Fail, Output: "cannot read the backup records (is the schema migrated?)"}
			}
			// A clock that runs behind the backup host's gives a negative age.
			age := max(now().Sub(e.CompletedAt), 0).Truncate(time.Second)
			r := health.Result{Status: health.Pass, ObservedValue: int64(age / time.Second), ObservedUnit: "s"}
			switch {
			case age > failAfter:
				r.Status = health.Fail
				r.Output = fmt.Sprintf("newest verified backup is %s old (fail after %s)", age, failAfter)
			case age > warnAfter:
				r.Status = health.Warn
				r.Output = fmt.Sprintf("newest verified backup is %s old (warn after %s)", age, warnAfter)
			}
			return r
		},
	}
}

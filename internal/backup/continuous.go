package backup

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/uptrace/bun"

	"github.com/prodready/service/internal/health"
)

// In continuous mode the recovery point is not a file but a stream: the
// newest moment a restore can reach. These checks report its age under the
// same name, backup:age, so monitors need not know which mode is in use.

// ArchiveCheck returns the backup:age check for PostgreSQL with continuous
// WAL archiving (pgBackRest's archive-push as archive_command). The newest
// restorable point is the last WAL segment the server archived, read from
// pg_stat_archiver. It fails when archive_mode is off, when nothing was
// ever archived, when the archive command failed after its last success
// (so a broken command turns the check red at its first failure, not when
// the age finally crosses failAfter) and past failAfter.
//
// Archived WAL restores nothing without a base backup to replay it onto, and
// replaying a week of it is slow: so the check also reads the newest verified
// pgBackRest backup from the backups table (pgbackrest-backup.sh records
// each one) and fails when none is recorded, warns or fails when it is older
// than baseWarnAfter or baseFailAfter (the dump mode's thresholds: the
// schedule takes one a day).
func ArchiveCheck(db *bun.DB, warnAfter, failAfter, baseWarnAfter, baseFailAfter time.Duration, now func() time.Time) health.Check {
	if now == nil {
		now = time.Now
	}
	return health.Check{
		Name:          CheckName,
		ComponentType: "datastore",
		Timeout:       CheckTimeout,
		Run: func(ctx context.Context) health.Result {
			var (
				mode                     string
				archivedWAL, failedWAL   sql.NullString
				archivedAt, failedAt     sql.NullTime
				archivedCount, failCount int64
			)
			err := db.QueryRowContext(ctx, `SELECT current_setting('archive_mode'), archived_count, last_archived_wal,
				last_archived_time, failed_count, last_failed_wal, last_failed_time FROM pg_stat_archiver`).
				Scan(&mode, &archivedCount, &archivedWAL, &archivedAt, &failCount, &failedWAL, &failedAt)
			switch {
			case ctx.Err() != nil:
				return health.Result{Status: health.Fail, Output: "timed out reading pg_stat_archiver"}
			case err != nil:
				return health.Result{Status: health.Fail, Output: "cannot read pg_stat_archiver"}
			case mode == "off":
				return health.Result{Status: health.Fail, Output: "archive_mode is off: no WAL is archived, so there is no point-in-time recovery"}
			}
			if failedAt.Valid && (!archivedAt.Valid || failedAt.Time.After(archivedAt.Time)) {
				r := health.Result{Status: health.Fail,
					Output: fmt.Sprintf("archive_command is failing: WAL segment %s not archived (%d failures so far)", failedWAL.String, failCount)}
				if archivedAt.Valid {
					r.ObservedValue, r.ObservedUnit = ageSeconds(now(), archivedAt.Time), "s"
				}
				return r
			}
			if !archivedAt.Valid {
				return health.Result{Status: health.Fail, Output: "no WAL segment archived yet"}
			}
			r := judge(now(), archivedAt.Time, warnAfter, failAfter, "last archived WAL segment ("+archivedWAL.String+")")
			if r.Status == health.Fail {
				return r
			}
			base, err := Newest(ctx, db, MethodPgBackRest)
			switch {
			case errors.Is(err, ErrNone):
				r.Status, r.Output = health.Fail, "no verified pgBackRest backup recorded: archived WAL alone cannot be restored (run pgbackrest-backup.sh full)"
			case ctx.Err() != nil:
				r.Status, r.Output = health.Fail, "timed out reading the backup records"
			case err != nil:
				r.Status, r.Output = health.Fail, "cannot read the backup records (is the schema migrated?)"
			default:
				// The base backup's age can only make the result worse; the
				// observed value stays the recovery point's age.
				age := max(now().Sub(base.CompletedAt), 0).Truncate(time.Second)
				switch {
				case age > baseFailAfter:
					r.Status, r.Output = health.Fail, fmt.Sprintf("newest verified pgBackRest backup (%s) is %s old (fail after %s)", base.FileName, age, baseFailAfter)
				case age > baseWarnAfter && r.Status == health.Pass:
					r.Status, r.Output = health.Warn, fmt.Sprintf("newest verified pgBackRest backup (%s) is %s old (warn after %s)", base.FileName, age, baseWarnAfter)
				}
			}
			return r
		},
	}
}

// LitestreamCheck returns the backup:age check for SQLite replicated by
// Litestream. The newest restorable point is Litestream's last successful
// sync of file to its replica, which it answers on its control socket
// (GET /list, socket.enabled in litestream.yml). Litestream syncs every
// second even when nothing changed, so an idle database stays fresh.
func LitestreamCheck(socket, file string, warnAfter, failAfter time.Duration, now func() time.Time) health.Check {
	if now == nil {
		now = time.Now
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
	want, err := filepath.Abs(file)
	if err != nil {
		want = file
	}
	return health.Check{
		Name:          CheckName,
		ComponentType: "datastore",
		Timeout:       CheckTimeout,
		Run: func(ctx context.Context) health.Result {
			dbs, err := litestreamList(ctx, client)
			switch {
			case ctx.Err() != nil:
				return health.Result{Status: health.Fail, Output: "timed out asking Litestream for its last sync"}
			case err != nil:
				return health.Result{Status: health.Fail, Output: "cannot ask Litestream for its last sync (is it running with its control socket?)"}
			}
			for _, d := range dbs {
				if d.Path != want {
					continue
				}
				if d.LastSyncAt == nil {
					return health.Result{Status: health.Fail, Output: "Litestream has not synced the database to its replica yet (status " + d.Status + ")"}
				}
				return judge(now(), *d.LastSyncAt, warnAfter, failAfter, "Litestream's last sync")
			}
			return health.Result{Status: health.Fail, Output: "Litestream does not replicate this database"}
		},
	}
}

type litestreamDB struct {
	Path       string     `json:"path"`
	Status     string     `json:"status"`
	LastSyncAt *time.Time `json:"last_sync_at"`
}

func litestreamList(ctx context.Context, client *http.Client) ([]litestreamDB, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://litestream/list", nil)
	if err != nil {
		return nil, fmt.Errorf("litestream list: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("litestream list: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("litestream list: HTTP %d", resp.StatusCode)
	}
	var body struct {
		Databases []litestreamDB `json:"databases"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("litestream list: %w", err)
	}
	return body.Databases, nil
}

// judge turns the time of the newest restorable point into a result.
func judge(now, point time.Time, warnAfter, failAfter time.Duration, what string) health.Result {
	age := max(now.Sub(point), 0).Truncate(time.Second)
	r := health.Result{Status: health.Pass, ObservedValue: int64(age / time.Second), ObservedUnit: "s"}
	switch {
	case age > failAfter:
		r.Status = health.Fail
		r.Output = fmt.Sprintf("newest restorable point, %s, is %s old (fail after %s)", what, age, failAfter)
	case age > warnAfter:
		r.Status = health.Warn
		r.Output = fmt.Sprintf("newest restorable point, %s, is %s old (warn after %s)", what, age, warnAfter)
	}
	return r
}

func ageSeconds(now, t time.Time) int64 {
	return int64(max(now.Sub(t), 0) / time.Second)
}

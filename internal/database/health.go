package database

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"syscall"
	"time"

	"github.com/uptrace/bun"

	"github.com/prodready/service/internal/health"
)

// Check makes a real round trip (SELECT 1) and reports its latency.
func Check(db *bun.DB, timeout time.Duration, log *slog.Logger) health.Check {
	return health.Check{Name: "database:responseTime", ComponentType: "datastore", Timeout: timeout,
		Run: func(ctx context.Context) health.Result {
			start := time.Now()
			var one int
			if err := db.NewSelect().ColumnExpr("1").Scan(ctx, &one); err != nil {
				health.LogFailure(ctx, log, "health: database check failed", "error", err)
				return health.Result{Status: health.Fail, Output: "the database did not answer a query (details in the service log)"}
			}
			return health.Result{Status: health.Pass, ObservedValue: health.Milliseconds(time.Since(start)), ObservedUnit: "ms"}
		}}
}

// MigrationsCheck fails when the database schema is behind this build: the
// core migrations and sets, the resources' own.
func MigrationsCheck(db *bun.DB, timeout time.Duration, log *slog.Logger, sets ...fs.FS) health.Check {
	return health.Check{Name: "database:migrations", ComponentType: "datastore", Timeout: timeout,
		Run: func(ctx context.Context) health.Result {
			n, err := Pending(ctx, db, sets...)
			if err != nil {
				health.LogFailure(ctx, log, "health: migration status unavailable", "error", err)
				return health.Result{Status: health.Fail, Output: "could not read the migration status (details in the service log)"}
			}
			if n > 0 {
				return health.Result{Status: health.Fail, ObservedValue: n, ObservedUnit: "pending",
					Output: fmt.Sprintf("%d migrations are not applied: run api migrate up", n)}
			}
			return health.Result{Status: health.Pass, ObservedValue: 0, ObservedUnit: "pending"}
		}}
}

// DiskCheck reports the free space on the file system holding dir (a
// SQLite database's directory): warn below warnPct percent free, fail below
// failPct.
func DiskCheck(dir string, warnPct, failPct int, log *slog.Logger) health.Check {
	return health.Check{Name: "disk:free", ComponentType: "system", Timeout: time.Second,
		Run: func(ctx context.Context) health.Result {
			var st syscall.Statfs_t
			if err := syscall.Statfs(dir, &st); err != nil {
				health.LogFailure(ctx, log, "health: disk check failed", "dir", dir, "error", err)
				return health.Result{Status: health.Fail, Output: "cannot read free space of the data directory"}
			}
			if st.Blocks == 0 {
				return health.Result{Status: health.Warn, Output: "the data directory's file system reports no size"}
			}
			free := math.Round(float64(st.Bavail)/float64(st.Blocks)*1000) / 10
			res := health.Result{Status: health.Pass, ObservedValue: free, ObservedUnit: "percent"}
			switch {
			case free < float64(failPct):
				res.Status, res.Output = health.Fail, fmt.Sprintf("less than %d%% free on the data directory's disk", failPct)
			case free < float64(warnPct):
				res.Status, res.Output = health.Warn, fmt.Sprintf("less than %d%% free on the data directory's disk", warnPct)
			}
			return res
		}}
}

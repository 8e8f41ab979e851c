package cache

import (
	"context"
	"log/slog"
	"time"

	"github.com/prodready/service/internal/health"
)

// Check pings Redis; the in-memory cache always passes.
func Check(c Cache, timeout time.Duration, log *slog.Logger) health.Check {
	return health.Check{Name: "cache:responseTime", ComponentType: "datastore", Timeout: timeout,
		Run: func(ctx context.Context) health.Result {
			if c.Kind() != "redis" {
				return health.Result{Status: health.Pass, Output: "in-memory cache"}
			}
			start := time.Now()
			if err := c.Ping(ctx); err != nil {
				health.LogFailure(ctx, log, "health: redis check failed", "error", err)
				return health.Result{Status: health.Fail, Output: "redis did not answer PING; reads fall back to the database"}
			}
			return health.Result{Status: health.Pass, ObservedValue: health.Milliseconds(time.Since(start)), ObservedUnit: "ms"}
		}}
}

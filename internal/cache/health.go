package cache

import (
	"context"
	"fmt"
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
			took := time.Since(start)
			res := health.Result{Status: health.Pass, ObservedValue: health.Milliseconds(took), ObservedUnit: "ms"}
			if timeout > 0 && took > timeout/2 {
				// Answering, but slowly: every cached read pays this, and a
				// miss twice, which can be worse than no cache at all.
				res.Status = health.Warn
				res.Output = fmt.Sprintf("redis answered PING in %s, more than half of status.cache_timeout (%s): every cached read waits about as long", took.Round(time.Millisecond), timeout)
			}
			return res
		}}
}

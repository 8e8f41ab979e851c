package cache

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"
)

// RouteRedisLogs sends go-redis's own messages (such as "failed to dial")
// to logger at warn level instead of its default, which prints plain text to
// stderr outside the service's structured logs. go-redis keeps one logger
// per process, so this is set once, at start-up.
func RouteRedisLogs(logger *slog.Logger) {
	redis.SetLogger(redisLogger{logger})
}

type redisLogger struct{ l *slog.Logger }

// Printf logs at warn, except failed dials: with Redis down every call that
// reaches it fails to dial, and the Breaker already logs that outage once
// when it starts and once when it ends. They stay visible at debug.
func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	level := slog.LevelWarn
	if strings.Contains(msg, "failed to dial") {
		level = slog.LevelDebug
	}
	r.l.Log(ctx, level, "redis client: "+msg)
}

package cache_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prodready/service/internal/cache"
	"github.com/prodready/service/internal/servicetest"
)

// TestRouteRedisLogs: with Redis gone, go-redis's complaints arrive as
// structured records in the service's log, not as loose stderr text; failed
// dials at debug, since the Breaker logs the outage itself, once.
func TestRouteRedisLogs(t *testing.T) {
	var logs servicetest.LogBuffer
	cache.RouteRedisLogs(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { cache.RouteRedisLogs(slog.New(slog.DiscardHandler)) })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // a closed port: dials fail
	r, err := cache.NewRedis(context.Background(), "redis://"+addr+"/0", cache.RedisOptions{DialTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_ = r.Ping(context.Background())
	if s := logs.String(); !strings.Contains(s, `"level":"DEBUG","msg":"redis client: redis: connection pool: failed to dial`) {
		t.Errorf("go-redis messages did not reach the structured log: %q", s)
	}
}

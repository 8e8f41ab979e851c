package cache_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prodready/service/internal/cache"
)

// TestRouteRedisLogs: with Redis gone, go-redis's complaints arrive as
// structured warnings in the service's log, not as loose stderr text.
func TestRouteRedisLogs(t *testing.T) {
	var buf bytes.Buffer
	var mu syncWriter
	mu.w = &buf
	cache.RouteRedisLogs(slog.New(slog.NewJSONHandler(&mu, nil)))
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
	if s := mu.String(); !strings.Contains(s, `"level":"WARN","msg":"redis client: `) {
		t.Errorf("go-redis messages did not reach the structured log: %q", s)
	}
}

// syncWriter guards the buffer: go-redis may log from its own goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

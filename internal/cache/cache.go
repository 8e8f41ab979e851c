// Package cache provides a byte cache, the one behind the notes read-through
// cache: Redis when a URL is configured, a bounded in-memory LRU otherwise;
// a circuit breaker that skips a failing Redis (breaker.go), and the status
// route's check of it (health.go).
package cache

import (
	"context"
	"time"
)

// Cache stores opaque values by key. A miss is (nil, false, nil); an error
// means the cache itself failed, and callers fall back to the source of truth.
type Cache interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Delete(ctx context.Context, key string) error
	// Ping checks the backend is reachable (always nil for memory).
	Ping(ctx context.Context) error
	// Kind names the backend for logs and the status route: "redis", "memory" or "none".
	Kind() string
	Close() error
}

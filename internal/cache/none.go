package cache

import (
	"context"
	"time"
)

// None caches nothing: every Get is a miss. Workers of one master that have
// no Redis use it, because an in-memory cache per process would go stale:
// a note changed through one worker is invalidated in that worker's memory
// only, and the others would keep serving the old version until its TTL.
type None struct{}

// Get always misses.
func (None) Get(context.Context, string) ([]byte, bool, error) { return nil, false, nil }

// Set keeps nothing.
func (None) Set(context.Context, string, []byte, time.Duration) error { return nil }

// Delete has nothing to remove.
func (None) Delete(context.Context, string) error { return nil }

// Ping always succeeds: there is no backend.
func (None) Ping(context.Context) error { return nil }

// Kind is "none".
func (None) Kind() string { return "none" }

// Close does nothing.
func (None) Close() error { return nil }

package cache_test

import (
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prodready/service/internal/cache"
	"github.com/prodready/service/internal/servicetest"
)

// TestBreaker_KilledRedis kills a Redis of the test's own: after the
// threshold of failures every call is skipped at once, the outage is
// logged once when it starts, and once when Redis is back (with the count
// of skipped calls), found by the probe after the cool-down.
func TestBreaker_KilledRedis(t *testing.T) {
	srv := servicetest.StartRedis(t)
	r, err := cache.NewRedis(t.Context(), srv.URL(), cache.RedisOptions{Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	logs := &servicetest.LogBuffer{}
	b := cache.NewBreaker(r, cache.BreakerOptions{Threshold: 3, Cooldown: 300 * time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err := b.Set(t.Context(), "k", []byte("v"), time.Minute); err != nil {
		t.Fatalf("set while Redis is up: %v", err)
	}

	srv.Kill()
	var failed, skipped int
	for range 100 {
		_, _, err := b.Get(t.Context(), "k")
		switch {
		case errors.Is(err, cache.ErrSkipped):
			skipped++
		case err != nil:
			failed++
		default:
			t.Fatal("a Get on a killed Redis succeeded")
		}
	}
	if failed != 3 || skipped != 97 {
		t.Errorf("100 Gets on a dead Redis: %d reached it, %d skipped; want 3 and 97", failed, skipped)
	}
	if got := logs.Records(t, "cache failing; skipping it (reads use the in-process cache when one is set, else the database), probing every cool-down"); len(got) != 1 {
		t.Errorf("outage start logged %d times; want once", len(got))
	}
	if n := len(logs.Records(t, "")); n != 1 {
		t.Errorf("%d log records for 100 calls on a dead Redis; want 1:\n%s", n, logs.String())
	}
	if b.Ping(t.Context()) == nil {
		t.Error("Ping reports a dead Redis as up: it must bypass the breaker")
	}

	srv.Start()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, ok, err := b.Get(t.Context(), "k")
		if err == nil {
			if ok || v != nil {
				t.Errorf("a restarted Redis without persistence has k = %q", v)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the breaker did not close within 10 s of Redis coming back: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	back := logs.Records(t, "cache answering again; using it")
	if len(back) != 1 || back[0]["skipped"].(float64) < 97 {
		t.Errorf("outage end: %v; want one record counting at least the 97 skipped calls", back)
	}
}

// TestRedis_FrozenTimeoutBoundsRetries freezes a Redis of the test's own
// (SIGSTOP): the kernel accepts the connection, nothing answers. The whole
// Get, its retry included, ends at RedisOptions.Timeout; before, each
// attempt waited its own read timeout, so the retry doubled the cost.
func TestRedis_FrozenTimeoutBoundsRetries(t *testing.T) {
	srv := servicetest.StartRedis(t)
	const timeout = 200 * time.Millisecond
	r, err := cache.NewRedis(t.Context(), srv.URL()+"?max_retries=3", cache.RedisOptions{
		Timeout: timeout, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	if err := r.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv.Freeze()
	t.Cleanup(srv.Thaw)
	start := time.Now()
	_, _, err = r.Get(t.Context(), "k")
	took := time.Since(start)
	if err == nil {
		t.Fatal("Get on a frozen Redis succeeded")
	}
	// Three retries at a 2 s read timeout would take over 6 s; the bound is
	// the operation's 200 ms. The margin absorbs a loaded machine.
	if took > 10*timeout {
		t.Errorf("Get on a frozen Redis took %s; want about the %s operation timeout", took, timeout)
	}
	t.Logf("Get on a frozen Redis failed after %s (timeout %s): %v", took, timeout, err)
}

// TestBreaker_OutageWithFallback freezes a Redis of the test's own
// (SIGSTOP, so it keeps its data) behind a breaker with an in-memory
// fallback: during the outage reads and writes are served by the fallback,
// an invalidation made meanwhile reaches Redis once it answers again (so
// the entry it held from before cannot be served stale), and the fallback
// is emptied.
func TestBreaker_OutageWithFallback(t *testing.T) {
	srv := servicetest.StartRedis(t)
	r, err := cache.NewRedis(t.Context(), srv.URL(), cache.RedisOptions{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	logs := &servicetest.LogBuffer{}
	fallback := cache.NewMemory(100)
	b := cache.NewBreaker(r, cache.BreakerOptions{Threshold: 2, Cooldown: 200 * time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(logs, nil)), Fallback: fallback})
	ctx := t.Context()
	if err := b.Set(ctx, "stale", []byte("before the outage"), time.Minute); err != nil {
		t.Fatalf("set while Redis is up: %v", err)
	}

	srv.Freeze()
	for range 2 { // the failures that open the breaker
		if _, _, err := b.Get(ctx, "stale"); err == nil {
			t.Fatal("a Get on a frozen Redis succeeded")
		}
	}
	steps := []struct {
		name string
		do   func() error
	}{
		{"set during the outage", func() error { return b.Set(ctx, "k", []byte("v"), time.Minute) }},
		{"get what was set", func() error {
			if v, ok, err := b.Get(ctx, "k"); err != nil || !ok || string(v) != "v" {
				return fmt.Errorf("got %q %v %w, want the fallback's v", v, ok, err)
			}
			return nil
		}},
		{"invalidate the entry Redis holds", func() error { return b.Delete(ctx, "stale") }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Errorf("%s: %v", s.name, err)
		}
	}

	srv.Thaw()
	deadline := time.Now().Add(10 * time.Second)
	for len(logs.Records(t, "cache back: invalidations made during the outage sent to it")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no replay of the lost invalidation within 10 s of Redis answering:\n%s", logs)
		}
		_, _, _ = b.Get(ctx, "probe")
		time.Sleep(20 * time.Millisecond)
	}
	if v, ok, err := r.Get(ctx, "stale"); err != nil || ok {
		t.Errorf("Redis still holds the entry invalidated during the outage: %q %v %v", v, ok, err)
	}
	if fallback.Len() != 0 {
		t.Errorf("the fallback holds %d entries after the outage; want it emptied", fallback.Len())
	}
}

// TestBreaker_Defaults: with no options, a Redis that is down is skipped
// after five failures in a row; a skipped invalidation says so (ErrSkipped)
// instead of pretending it happened; Ping, Kind and Close still reach Redis.
func TestBreaker_Defaults(t *testing.T) {
	r, err := cache.NewRedis(t.Context(), "redis://"+closedAddr(t)+"/0", cache.RedisOptions{
		DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	b := cache.NewBreaker(r, cache.BreakerOptions{})
	for i := range 5 {
		if _, _, err := b.Get(t.Context(), "k"); err == nil || errors.Is(err, cache.ErrSkipped) {
			t.Fatalf("call %d: %v, want Redis's own error", i+1, err)
		}
	}
	if _, _, err := b.Get(t.Context(), "k"); !errors.Is(err, cache.ErrSkipped) {
		t.Errorf("6th get: %v, want ErrSkipped", err)
	}
	if err := b.Delete(t.Context(), "k"); !errors.Is(err, cache.ErrSkipped) {
		t.Errorf("delete while open: %v, want ErrSkipped", err)
	}
	if err := b.Ping(t.Context()); err == nil {
		t.Error("ping through an open breaker: nil, want Redis's error")
	}
	if b.Kind() != r.Kind() {
		t.Errorf("kind %q, want %q", b.Kind(), r.Kind())
	}
	if err := b.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

// TestBreaker_NoStaleReadAfterAWriteInTheOutage: a note updated while Redis
// is failing is never read back at its old version, neither from the
// in-process fallback (the invalidation that went to Redis as the probe and
// failed used to leave the fallback's copy) nor from Redis once it answers
// again (the probe's read used to return what Redis held before the replay
// of the missed invalidations had deleted it).
func TestBreaker_NoStaleReadAfterAWriteInTheOutage(t *testing.T) {
	const cooldown = 100 * time.Millisecond
	tests := []struct {
		name string
		// during runs with Redis frozen and the breaker open; after, once
		// Redis answers again and the cool-down has passed.
		during, after func(t *testing.T, b *cache.Breaker)
	}{
		{"the invalidation is the probe and fails", func(t *testing.T, b *cache.Breaker) {
			ctx := t.Context()
			_ = b.Set(ctx, "note:1", []byte("v1"), time.Minute) // a read during the outage fills the fallback
			time.Sleep(2 * cooldown)
			_ = b.Delete(ctx, "note:1") // the update's invalidation: let through as the probe, fails
			if v, ok, _ := b.Get(ctx, "note:1"); ok {
				t.Errorf("after the update, the fallback still serves %q", v)
			}
		}, nil},
		{"Redis held the old version", func(t *testing.T, b *cache.Breaker) {
			_ = b.Delete(t.Context(), "note:1") // skipped: remembered
		}, func(t *testing.T, b *cache.Breaker) {
			if v, ok, err := b.Get(t.Context(), "note:1"); ok || err != nil { // the probe
				t.Errorf("the first read once Redis answers: %q %v %v, want a miss (the note was updated during the outage)", v, ok, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := servicetest.StartRedis(t)
			r, err := cache.NewRedis(t.Context(), srv.URL(), cache.RedisOptions{Timeout: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = r.Close() })
			b := cache.NewBreaker(r, cache.BreakerOptions{Threshold: 2, Cooldown: cooldown, Fallback: cache.NewMemory(100)})
			ctx := t.Context()
			if err := b.Set(ctx, "note:1", []byte("v1"), time.Minute); err != nil {
				t.Fatalf("set while Redis is up: %v", err)
			}
			srv.Freeze()
			for range 2 { // the failures that open the breaker
				_, _, _ = b.Get(ctx, "other")
			}
			tt.during(t, b)
			srv.Thaw()
			time.Sleep(2 * cooldown)
			if tt.after != nil {
				tt.after(t, b)
			}
		})
	}
}

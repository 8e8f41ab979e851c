package cache_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prodready/service/internal/cache"
)

// backend builds a fresh, empty cache for one scenario.
type backend struct {
	kind string
	new  func(t *testing.T) cache.Cache
}

// backends are the implementations the contract runs against. Redis needs
// TEST_REDIS_URL; without it the Redis half skips (or fails under
// REQUIRE_SERVICES=1).
func backends() []backend {
	return []backend{
		{"memory", func(t *testing.T) cache.Cache {
			c := cache.NewMemory(1000)
			t.Cleanup(func() { _ = c.Close() })
			return c
		}},
		{"redis", func(t *testing.T) cache.Cache { return newTestRedis(t) }},
	}
}

// TestContract checks the behaviour every Cache promises, whatever the backend.
func TestContract(t *testing.T) {
	scenarios := []struct {
		name string
		run  func(t *testing.T, c cache.Cache)
	}{
		{"set then get round-trips", func(t *testing.T, c cache.Cache) {
			mustSet(t, c, "k", []byte("value"), time.Minute)
			wantHit(t, c, "k", []byte("value"))
		}},
		{"binary and empty values round-trip", func(t *testing.T, c cache.Cache) {
			mustSet(t, c, "bin", []byte{0, 1, 0xff, '\n', 0}, time.Minute)
			mustSet(t, c, "empty", []byte{}, time.Minute)
			wantHit(t, c, "bin", []byte{0, 1, 0xff, '\n', 0})
			wantHit(t, c, "empty", []byte{})
		}},
		{"unknown key is a miss, not an error", func(t *testing.T, c cache.Cache) {
			wantMiss(t, c, "never-set")
		}},
		{"delete removes the key", func(t *testing.T, c cache.Cache) {
			mustSet(t, c, "k", []byte("v"), time.Minute)
			mustDelete(t, c, "k")
			wantMiss(t, c, "k")
		}},
		{"deleting a missing key succeeds", func(t *testing.T, c cache.Cache) {
			mustDelete(t, c, "never-set")
		}},
		{"set overwrites value and ttl", func(t *testing.T, c cache.Cache) {
			mustSet(t, c, "k", []byte("old"), 50*time.Millisecond)
			mustSet(t, c, "k", []byte("new"), time.Minute)
			time.Sleep(100 * time.Millisecond) // past the first ttl, well inside the second
			wantHit(t, c, "k", []byte("new"))
		}},
		{"entry expires after its ttl", func(t *testing.T, c cache.Cache) {
			const ttl = 200 * time.Millisecond
			start := time.Now()
			mustSet(t, c, "k", []byte("v"), ttl)
			_, ok, err := c.Get(t.Context(), "k")
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			// Only a miss seen before the ttl ran out is a bug; a slow machine
			// may legitimately get there late.
			if !ok && time.Since(start) < ttl {
				t.Fatal("miss before the ttl elapsed")
			}
			eventuallyMiss(t, c, "k", 5*time.Second)
		}},
		{"keys are independent", func(t *testing.T, c cache.Cache) {
			mustSet(t, c, "a", []byte("1"), time.Minute)
			mustSet(t, c, "b", []byte("2"), time.Minute)
			mustDelete(t, c, "a")
			wantMiss(t, c, "a")
			wantHit(t, c, "b", []byte("2"))
		}},
		{"non-positive ttl stores without expiry", func(t *testing.T, c cache.Cache) {
			mustSet(t, c, "zero", []byte("z"), 0)
			mustSet(t, c, "negative", []byte("n"), -time.Nanosecond)
			wantHit(t, c, "zero", []byte("z"))
			wantHit(t, c, "negative", []byte("n"))
		}},
		{"callers cannot change cached bytes", func(t *testing.T, c cache.Cache) {
			in := []byte("original")
			mustSet(t, c, "k", in, time.Minute)
			copy(in, "XXXXXXXX") // the writer reuses its buffer
			got := wantHit(t, c, "k", []byte("original"))
			copy(got, "YYYYYYYY") // a reader scribbles on its result
			wantHit(t, c, "k", []byte("original"))
		}},
		{"ping succeeds", func(t *testing.T, c cache.Cache) {
			if err := c.Ping(t.Context()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
		}},
		{"concurrent use is safe", func(t *testing.T, c cache.Cache) {
			// Meaningful under -race: overlapping keys exercise every path at once.
			ctx := t.Context()
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Go(func() {
					for i := range 50 {
						key := fmt.Sprintf("k%d", i%5)
						val := fmt.Appendf(nil, "g%d-%d", g, i)
						if err := c.Set(ctx, key, val, time.Minute); err != nil {
							t.Errorf("Set: %v", err)
							return
						}
						if _, _, err := c.Get(ctx, key); err != nil {
							t.Errorf("Get: %v", err)
							return
						}
						if i%7 == 0 {
							if err := c.Delete(ctx, key); err != nil {
								t.Errorf("Delete: %v", err)
								return
							}
						}
					}
				})
			}
			wg.Wait()
		}},
	}
	for _, b := range backends() {
		t.Run(b.kind, func(t *testing.T) {
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					t.Parallel()
					c := b.new(t)
					if got := c.Kind(); got != b.kind {
						t.Fatalf("Kind() = %q, want %q", got, b.kind)
					}
					sc.run(t, c)
				})
			}
		})
	}
}

func mustSet(t *testing.T, c cache.Cache, key string, v []byte, ttl time.Duration) {
	t.Helper()
	if err := c.Set(t.Context(), key, v, ttl); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func mustDelete(t *testing.T, c cache.Cache, key string) {
	t.Helper()
	if err := c.Delete(t.Context(), key); err != nil {
		t.Fatalf("Delete(%q): %v", key, err)
	}
}

func wantHit(t *testing.T, c cache.Cache, key string, want []byte) []byte {
	t.Helper()
	got, ok, err := c.Get(t.Context(), key)
	if err != nil || !ok {
		t.Fatalf("Get(%q) = _, %v, %v; want a hit", key, ok, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
	return got
}

func wantMiss(t *testing.T, c cache.Cache, key string) {
	t.Helper()
	got, ok, err := c.Get(t.Context(), key)
	if err != nil || ok || got != nil {
		t.Fatalf("Get(%q) = %q, %v, %v; want nil, false, nil", key, got, ok, err)
	}
}

// eventuallyMiss polls instead of sleeping a fixed time, so the test is as
// fast as the backend allows and does not flake on a loaded machine.
func eventuallyMiss(t *testing.T, c cache.Cache, key string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		_, ok, err := c.Get(t.Context(), key)
		if err != nil {
			t.Fatalf("Get(%q): %v", key, err)
		}
		if !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Get(%q) still hits after %v", key, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

package cache_test

import (
	"testing"
	"time"

	"github.com/prodready/service/internal/cache"
)

func TestMemoryEvictsLeastRecentlyUsed(t *testing.T) {
	tests := []struct {
		name    string
		touch   func(t *testing.T, c cache.Cache) // runs after a and b are set
		evicted string
		kept    []string
	}{
		{"untouched: oldest goes", func(*testing.T, cache.Cache) {}, "a", []string{"b", "c"}},
		{"get refreshes", func(t *testing.T, c cache.Cache) { wantHit(t, c, "a", []byte("a")) }, "b", []string{"a", "c"}},
		{"overwrite refreshes", func(t *testing.T, c cache.Cache) { mustSet(t, c, "a", []byte("a"), time.Minute) }, "b", []string{"a", "c"}},
		{"a miss does not refresh", func(t *testing.T, c cache.Cache) { wantMiss(t, c, "zzz") }, "a", []string{"b", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cache.NewMemory(2)
			mustSet(t, c, "a", []byte("a"), time.Minute)
			mustSet(t, c, "b", []byte("b"), time.Minute)
			tt.touch(t, c)
			mustSet(t, c, "c", []byte("c"), time.Minute)

			wantMiss(t, c, tt.evicted)
			for _, k := range tt.kept {
				wantHit(t, c, k, []byte(k))
			}
			if got := c.Len(); got != 2 {
				t.Fatalf("Len() = %d, want 2", got)
			}
		})
	}
}

func TestMemoryExpiredEntryIsEvictedOnGet(t *testing.T) {
	c := cache.NewMemory(10)
	mustSet(t, c, "short", []byte("v"), time.Millisecond)
	mustSet(t, c, "long", []byte("v"), time.Minute)
	time.Sleep(5 * time.Millisecond)
	if got := c.Len(); got != 2 {
		t.Fatalf("Len() before Get = %d, want 2 (expiry is lazy)", got)
	}
	wantMiss(t, c, "short")
	if got := c.Len(); got != 1 {
		t.Fatalf("Len() after Get = %d, want 1", got)
	}
}

func TestMemoryCloseDropsEntries(t *testing.T) {
	c := cache.NewMemory(10)
	mustSet(t, c, "k", []byte("v"), time.Minute)
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := c.Len(); got != 0 {
		t.Fatalf("Len() after Close = %d, want 0", got)
	}
	wantMiss(t, c, "k")
	mustSet(t, c, "k", []byte("v"), time.Minute) // still usable: no shutdown race
	wantHit(t, c, "k", []byte("v"))
}

func TestNewMemoryRejectsNonPositiveSize(t *testing.T) {
	for _, n := range []int{0, -1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewMemory(%d) did not panic", n)
				}
			}()
			cache.NewMemory(n)
		}()
	}
}

func TestMemoryConcurrentEviction(t *testing.T) {
	// Many writers into a tiny cache keep the list and the map changing
	// together; -race and the final size check catch a missed lock.
	c := cache.NewMemory(3)
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 200 {
				key := string(rune('a' + (g+i)%10))
				mustSetNoFatal(t, c, key)
				_, _, _ = c.Get(t.Context(), key)
			}
		}()
	}
	for range 8 {
		<-done
	}
	if got := c.Len(); got > 3 {
		t.Fatalf("Len() = %d, want at most 3", got)
	}
}

// mustSetNoFatal is for goroutines, where t.Fatal is not allowed.
func mustSetNoFatal(t *testing.T, c cache.Cache, key string) {
	if err := c.Set(t.Context(), key, []byte(key), time.Minute); err != nil {
		t.Errorf("Set(%q): %v", key, err)
	}
}

package notes_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/prodready/service/internal/cache"
	"github.com/prodready/service/internal/health"
	"github.com/prodready/service/internal/notes"
	"github.com/prodready/service/internal/server"
	"github.com/prodready/service/internal/servicetest"
)

// cacheTestStore is a small, real in-memory notes.Store. It counts Get calls
// so tests can tell a cache hit from a store read.
type cacheTestStore struct {
	mu    sync.Mutex
	notes map[string]notes.Note
	order []string // ids in creation order, for List
	gets  int
}

func newCacheTestStore() *cacheTestStore {
	return &cacheTestStore{notes: make(map[string]notes.Note)}
}

func (s *cacheTestStore) getCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets
}

func (s *cacheTestStore) Create(ctx context.Context, in notes.Input) (notes.Note, error) {
	if err := ctx.Err(); err != nil {
		return notes.Note{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UTC()
	n := notes.Note{ID: uuid.NewString(), Title: in.Title, Body: in.Body, Version: 1, CreatedAt: now, UpdatedAt: now}
	s.notes[n.ID] = n
	s.order = append(s.order, n.ID)
	return n, nil
}

func (s *cacheTestStore) Get(ctx context.Context, id string) (notes.Note, error) {
	if err := ctx.Err(); err != nil {
		return notes.Note{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gets++
	n, ok := s.notes[id]
	if !ok {
		return notes.Note{}, notes.ErrNotFound
	}
	return n, nil
}

func (s *cacheTestStore) List(ctx context.Context, cursor string, limit int) (notes.Page, error) {
	if err := ctx.Err(); err != nil {
		return notes.Page{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	start := 0
	if cursor != "" {
		start = slices.Index(s.order, cursor) + 1
	}
	var p notes.Page
	for _, id := range s.order[start:] {
		if len(p.Items) == limit {
			p.NextCursor = p.Items[len(p.Items)-1].ID
			break
		}
		p.Items = append(p.Items, s.notes[id])
	}
	return p, nil
}

// check applies the version rule shared by Update and Delete; s.mu must be held.
func (s *cacheTestStore) check(id string, want int64) (notes.Note, error) {
	n, ok := s.notes[id]
	switch {
	case !ok:
		return notes.Note{}, notes.ErrNotFound
	case want != notes.AnyVersion && want != n.Version:
		return notes.Note{}, notes.ErrVersionMismatch
	}
	return n, nil
}

func (s *cacheTestStore) Update(ctx context.Context, id string, in notes.Input, want int64) (notes.Note, error) {
	if err := ctx.Err(); err != nil {
		return notes.Note{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.check(id, want)
	if err != nil {
		return notes.Note{}, err
	}
	n.Title, n.Body, n.Version, n.UpdatedAt = in.Title, in.Body, n.Version+1, time.Now().UTC()
	s.notes[id] = n
	return n, nil
}

func (s *cacheTestStore) Delete(ctx context.Context, id string, want int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.check(id, want); err != nil {
		return err
	}
	delete(s.notes, id)
	s.order = slices.DeleteFunc(s.order, func(x string) bool { return x == id })
	return nil
}

// cacheTestBackend builds a fresh cache for one scenario.
type cacheTestBackend struct {
	kind string
	new  func(t *testing.T) cache.Cache
}

func cacheTestBackends() []cacheTestBackend {
	return []cacheTestBackend{
		{"memory", func(*testing.T) cache.Cache { return cache.NewMemory(100) }},
		{"redis", func(t *testing.T) cache.Cache {
			url := servicetest.URL(t, "TEST_REDIS_URL", "Redis")
			// A prefix per test keeps parallel tests and packages apart.
			c, err := cache.NewRedis(t.Context(), url, cache.RedisOptions{KeyPrefix: "notestest:" + uuid.NewString() + ":"})
			if err != nil {
				t.Fatalf("NewRedis: %v", err)
			}
			if err := c.Ping(t.Context()); err != nil {
				t.Fatalf("TEST_REDIS_URL is set but Redis does not answer: %v", err)
			}
			t.Cleanup(func() { _ = c.Close() })
			return c
		}},
	}
}

// cacheTestFixture is one CachedStore over a fresh store and cache.
type cacheTestFixture struct {
	store  *cacheTestStore
	cache  cache.Cache
	cached *notes.CachedStore
	logs   *bytes.Buffer
}

func newCacheTestFixture(t *testing.T, c cache.Cache, ttl time.Duration) *cacheTestFixture {
	t.Helper()
	f := &cacheTestFixture{store: newCacheTestStore(), cache: c, logs: new(bytes.Buffer)}
	// The buffer is only read after the calls return, so it needs no lock.
	log := slog.New(slog.NewJSONHandler(f.logs, nil))
	f.cached = notes.NewCachedStore(f.store, c, ttl, log)
	t.Cleanup(func() {
		// Remove what the test cached, so Redis keeps only live keys.
		f.store.mu.Lock()
		defer f.store.mu.Unlock()
		for id := range f.store.notes {
			_ = c.Delete(context.Background(), "note:v2:"+id)
		}
	})
	return f
}

// create stores a note directly in the store, bypassing the cache.
func (f *cacheTestFixture) create(t *testing.T, title string) notes.Note {
	t.Helper()
	n, err := f.store.Create(t.Context(), notes.Input{Title: title, Body: "body of " + title})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return n
}

func (f *cacheTestFixture) mustGet(t *testing.T, id string) notes.Note {
	t.Helper()
	n, err := f.cached.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return n
}

func (f *cacheTestFixture) wantStoreGets(t *testing.T, want int) {
	t.Helper()
	if got := f.store.getCount(); got != want {
		t.Fatalf("store Get calls = %d, want %d", got, want)
	}
}

func (f *cacheTestFixture) wantStats(t *testing.T, want notes.CacheStats) {
	t.Helper()
	if got := f.cached.Stats(); got != want {
		t.Fatalf("Stats() = %+v, want %+v", got, want)
	}
}

func sameNote(t *testing.T, got, want notes.Note) {
	t.Helper()
	// Times go through JSON in the cache; compare instants, not representations.
	if got.ID != want.ID || got.Title != want.Title || got.Body != want.Body || got.Version != want.Version ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Fatalf("note = %+v, want %+v", got, want)
	}
}

func TestCachedStore(t *testing.T) {
	const ttl = time.Minute // long enough that only invalidation removes entries
	scenarios := []struct {
		name string
		ttl  time.Duration // ttl when it is not the default
		run  func(t *testing.T, f *cacheTestFixture)
	}{
		{"second get is served from the cache", 0, func(t *testing.T, f *cacheTestFixture) {
			n := f.create(t, "first")
			sameNote(t, f.mustGet(t, n.ID), n)
			sameNote(t, f.mustGet(t, n.ID), n)
			f.wantStoreGets(t, 1)
			f.wantStats(t, notes.CacheStats{Hits: 1, Misses: 1})
		}},
		{"update invalidates", 0, func(t *testing.T, f *cacheTestFixture) {
			n := f.create(t, "before")
			f.mustGet(t, n.ID)
			updated, err := f.cached.Update(t.Context(), n.ID, notes.Input{Title: "after"}, n.Version)
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			got := f.mustGet(t, n.ID)
			sameNote(t, got, updated)
			if got.Version != 2 || got.Title != "after" {
				t.Fatalf("Get after Update = version %d %q, want version 2 \"after\"", got.Version, got.Title)
			}
			f.wantStoreGets(t, 2)
		}},
		{"failed update still invalidates", 0, func(t *testing.T, f *cacheTestFixture) {
			n := f.create(t, "n")
			f.mustGet(t, n.ID)
			_, err := f.cached.Update(t.Context(), n.ID, notes.Input{Title: "x"}, n.Version+1)
			if !errors.Is(err, notes.ErrVersionMismatch) {
				t.Fatalf("Update with a wrong version = %v, want ErrVersionMismatch", err)
			}
			f.mustGet(t, n.ID)
			f.wantStoreGets(t, 2)
		}},
		{"delete invalidates", 0, func(t *testing.T, f *cacheTestFixture) {
			n := f.create(t, "doomed")
			f.mustGet(t, n.ID)
			if err := f.cached.Delete(t.Context(), n.ID, n.Version); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if _, err := f.cached.Get(t.Context(), n.ID); !errors.Is(err, notes.ErrNotFound) {
				t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
			}
		}},
		{"not found is not cached", 0, func(t *testing.T, f *cacheTestFixture) {
			id := uuid.NewString()
			for range 2 {
				if _, err := f.cached.Get(t.Context(), id); !errors.Is(err, notes.ErrNotFound) {
					t.Fatalf("Get(unknown) = %v, want ErrNotFound", err)
				}
			}
			f.wantStoreGets(t, 2)
			f.wantStats(t, notes.CacheStats{Misses: 2})
		}},
		{"create and list pass through", 0, func(t *testing.T, f *cacheTestFixture) {
			a, err := f.cached.Create(t.Context(), notes.Input{Title: "a"})
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			b, err := f.cached.Create(t.Context(), notes.Input{Title: "b"})
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			p, err := f.cached.List(t.Context(), "", 1)
			if err != nil || len(p.Items) != 1 || p.Items[0].ID != a.ID || p.NextCursor != a.ID {
				t.Fatalf("List = %+v, %v; want [a] and a cursor", p, err)
			}
			if p, err = f.cached.List(t.Context(), p.NextCursor, 1); err != nil || len(p.Items) != 1 || p.Items[0].ID != b.ID {
				t.Fatalf("List page 2 = %+v, %v; want [b]", p, err)
			}
			f.mustGet(t, a.ID) // Create did not fill the cache
			f.wantStats(t, notes.CacheStats{Misses: 1})
		}},
		{"entry expires after the ttl", 200 * time.Millisecond, func(t *testing.T, f *cacheTestFixture) {
			n := f.create(t, "short-lived")
			f.mustGet(t, n.ID)
			deadline := time.Now().Add(5 * time.Second)
			for f.store.getCount() < 2 {
				if time.Now().After(deadline) {
					t.Fatal("still served from the cache 5s after a 200ms ttl")
				}
				time.Sleep(20 * time.Millisecond)
				f.mustGet(t, n.ID)
			}
		}},
		{"unreadable entries are misses and get replaced", 0, func(t *testing.T, f *cacheTestFixture) {
			n := f.create(t, "victim")
			other := f.create(t, "other")
			otherJSON, err := json.Marshal(other)
			if err != nil {
				t.Fatal(err)
			}
			// Old formats, garbage, and a well-formed entry of another note.
			entries := [][]byte{[]byte("not json"), []byte(`{"version":"x"}`), otherJSON, append([]byte("1\n"), otherJSON...)}
			for i, bad := range entries {
				if err := f.cache.Set(t.Context(), "note:v2:"+n.ID, bad, time.Minute); err != nil {
					t.Fatalf("seed the cache: %v", err)
				}
				sameNote(t, f.mustGet(t, n.ID), n) // from the store, and refilled
				sameNote(t, f.mustGet(t, n.ID), n) // from the refilled entry
				f.wantStoreGets(t, i+1)
			}
			f.wantStats(t, notes.CacheStats{Hits: 4, Misses: 4, Errors: 4})
			if !strings.Contains(f.logs.String(), "note cache entry unreadable") {
				t.Fatalf("no warning logged; logs:\n%s", f.logs)
			}
			if strings.Contains(f.logs.String(), "not json") {
				t.Fatal("the log carries the cached bytes")
			}
		}},
	}
	for _, b := range cacheTestBackends() {
		t.Run(b.kind, func(t *testing.T) {
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					t.Parallel()
					sc.run(t, newCacheTestFixture(t, b.new(t), cmp.Or(sc.ttl, ttl)))
				})
			}
		})
	}
}

// TestCachedStoreRedisDown checks that a dead cache costs nothing but
// speed: every call is answered by the store, and the failures are counted
// and logged.
func TestCachedStoreRedisDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // now nothing listens there: dials are refused
	c, err := cache.NewRedis(t.Context(), "redis://"+addr+"/0", cache.RedisOptions{
		DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("NewRedis must not fail when Redis is down: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	f := newCacheTestFixture(t, c, time.Minute)
	ctx := t.Context()

	n, err := f.cached.Create(ctx, notes.Input{Title: "secret title", Body: "secret body"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	for range 2 {
		sameNote(t, f.mustGet(t, n.ID), n)
	}
	if p, err := f.cached.List(ctx, "", 10); err != nil || len(p.Items) != 1 {
		t.Fatalf("List = %+v, %v", p, err)
	}
	updated, err := f.cached.Update(ctx, n.ID, notes.Input{Title: "secret title 2"}, n.Version)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	sameNote(t, f.mustGet(t, n.ID), updated)
	if err := f.cached.Delete(ctx, n.ID, updated.Version); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := f.cached.Get(ctx, n.ID); !errors.Is(err, notes.ErrNotFound) {
		t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
	}

	// 4 failed cache reads, 2 failed invalidations; no fills were attempted.
	f.wantStats(t, notes.CacheStats{Misses: 4, Errors: 6})
	f.wantStoreGets(t, 4)

	var warned int
	for line := range strings.Lines(f.logs.String()) {
		var rec struct {
			Level, Msg, Cache, Op, Key, Err string
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec.Level == "WARN" && rec.Msg == "note cache failed, using the store" &&
			rec.Cache == "redis" && rec.Key == "note:v2:"+n.ID && rec.Err != "" {
			warned++
		}
	}
	if warned != 6 {
		t.Fatalf("%d matching warnings, want 6; logs:\n%s", warned, f.logs)
	}
	if strings.Contains(f.logs.String(), "secret") {
		t.Fatalf("the log carries note content:\n%s", f.logs)
	}

	// A caller hanging up is not a cache failure: nothing more is counted.
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := f.cached.Get(canceled, n.ID); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with a canceled context = %v, want context.Canceled", err)
	}
	if got := f.cached.Stats().Errors; got != 6 {
		t.Fatalf("Errors after a canceled Get = %d, want 6", got)
	}
}

// TestCachedStore_Check: /status's notes:cache shows the share of reads the
// cache answered, and warns once for cache failures since the last check.
func TestCachedStore_Check(t *testing.T) {
	run := func(c health.Check) health.CheckResult {
		return health.NewRunner(nil, 0, 2*time.Second, c).Run(context.Background()).Checks["notes:cache"][0]
	}
	f := newCacheTestFixture(t, cache.NewMemory(10), time.Minute)
	check := f.cached.Check()
	if r := run(check); r.Status != health.Pass || r.ObservedValue != 0.0 || r.ObservedUnit != "percent" {
		t.Errorf("before any read: %+v", r)
	}
	n := f.create(t, "counted")
	for range 4 {
		f.mustGet(t, n.ID)
	}
	if r := run(check); r.Status != health.Pass || r.ObservedValue != 75.0 ||
		r.Output != "3 reads from the cache, 1 from the database, 0 cache failures since start" {
		t.Errorf("after 1 miss and 3 hits: %+v", r)
	}

	down, err := cache.NewRedis(t.Context(), "redis://"+servicetest.ClosedPort(t), cache.RedisOptions{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = down.Close() })
	failing := newCacheTestFixture(t, down, time.Minute)
	check = failing.cached.Check()
	n = failing.create(t, "uncached")
	failing.mustGet(t, n.ID)
	failing.mustGet(t, n.ID)
	if r := run(check); r.Status != health.Warn || r.Output != "2 cache failures since the last check (each logged); the database answered instead" {
		t.Errorf("after 2 failed cache reads: %+v", r)
	}
	if r := run(check); r.Status != health.Pass || !strings.Contains(r.Output, "2 cache failures since start") {
		t.Errorf("no new failures: %+v", r)
	}
}

// TestCachedGet_AnswersAsTheStoreDoes drives GET /v1/notes/:id through the
// real server: a miss, a hit (written from the cached bytes, not encoded
// again) and the uncached store must give the client the same status,
// headers and body, byte for byte, and a hit still honours If-None-Match.
func TestCachedGet_AnswersAsTheStoreDoes(t *testing.T) {
	for _, b := range cacheTestBackends() {
		t.Run(b.kind, func(t *testing.T) {
			f := newCacheTestFixture(t, b.new(t), time.Minute)
			n := f.create(t, `quotes " and <tags> & unicode é`)
			serve := func(s notes.Store, header ...string) *httptest.ResponseRecorder {
				h := server.New(server.Options{
					Logger: slog.New(slog.DiscardHandler),
					Routes: []func(gin.IRouter){notes.Routes(s, notes.APIOptions{Logger: slog.New(slog.DiscardHandler)})},
				})
				req := httptest.NewRequest(http.MethodGet, "/v1/notes/"+n.ID, nil)
				for i := 0; i+1 < len(header); i += 2 {
					req.Header.Set(header[i], header[i+1])
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				return w
			}
			direct := serve(f.store)
			miss := serve(f.cached)
			hit := serve(f.cached)
			f.wantStats(t, notes.CacheStats{Hits: 1, Misses: 1})
			for name, w := range map[string]*httptest.ResponseRecorder{"miss": miss, "hit": hit} {
				if w.Code != direct.Code || w.Body.String() != direct.Body.String() {
					t.Errorf("%s: %d %s, want %d %s", name, w.Code, w.Body, direct.Code, direct.Body)
				}
				for _, h := range []string{"Content-Type", "ETag"} {
					if w.Header().Get(h) != direct.Header().Get(h) {
						t.Errorf("%s: %s = %q, want %q", name, h, w.Header().Get(h), direct.Header().Get(h))
					}
				}
			}
			w := serve(f.cached, "If-None-Match", etagOf(n))
			if w.Code != http.StatusNotModified || w.Body.Len() != 0 || w.Header().Get("ETag") != etagOf(n) {
				t.Errorf("conditional hit: %d %q ETag %q, want 304, no body, ETag %s", w.Code, w.Body, w.Header().Get("ETag"), etagOf(n))
			}
		})
	}
}

func etagOf(n notes.Note) string { return fmt.Sprintf(`"%d"`, n.Version) }

// TestStoreWrappers_RefuseAMissingPart: wiring a cached or bounded store
// without one of its parts fails at start-up with what is missing, not with
// a nil dereference on the first request.
func TestStoreWrappers_RefuseAMissingPart(t *testing.T) {
	var store notes.Store = &notes.BoundedStore{}
	unavailable := func(error) bool { return false }
	for _, tt := range []struct {
		name, want string
		wire       func()
	}{
		{"cached without a cache", "notes: NewCachedStore needs a store and a cache", func() { notes.NewCachedStore(store, nil, time.Minute, nil) }},
		{"cached without a ttl", "notes: NewCachedStore needs a positive ttl", func() { notes.NewCachedStore(store, cache.NewMemory(1), 0, nil) }},
		{"bounded without a timeout", "notes: NewBoundedStore needs a store, a classifier and a positive timeout",
			func() { notes.NewBoundedStore(store, 0, unavailable) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if got := recover(); got != tt.want {
					t.Errorf("panic %v, want %q", got, tt.want)
				}
			}()
			tt.wire()
		})
	}
	if s := notes.NewCachedStore(store, cache.NewMemory(1), time.Minute, nil); s == nil { // a nil logger is allowed: it discards
		t.Error("no store")
	}
}

package notes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/prodready/service/internal/cache"
	"github.com/prodready/service/internal/health"
)

// cacheKeyPrefix versions the cached encoding: after a change to Note that
// old entries cannot satisfy, bump it and the old keys are never read again
// (they expire with their TTL). v2 entries are the version, a newline and
// the note's JSON as the API sends it (see EncodedNote).
const cacheKeyPrefix = "note:v2:"

// invalidateTimeout bounds an invalidation, which runs even after the
// request's context is canceled (see CachedStore.invalidate).
const invalidateTimeout = time.Second

// CacheStats counts what the cache did for Get calls, for the status route
// (Check) and the Cache/Failures metric.
type CacheStats struct {
	Hits   uint64 // Gets answered from the cache
	Misses uint64 // Gets that went to the store: absent, unreadable or failing entry
	Errors uint64 // cache failures and unreadable entries; each one was logged
}

// CachedStore is a Store that answers Get from a cache in front of another
// Store (read-through) and deletes the cached note after every Update and
// Delete (invalidation). The cache is an optimisation only: when it fails,
// the failure is logged and counted, and the request is served by the store.
//
// Known race: a Get that misses reads version N from the store; before it
// writes N to the cache, an Update commits N+1 and deletes the key; the Get
// then caches N, and readers see N until the entry expires. The TTL bounds
// that staleness, so keep it short. Writes are never affected: Update and
// Delete check the version in the store, so a client acting on a stale read
// gets ErrVersionMismatch, not a lost update. With the in-memory cache and
// several replicas, invalidations stay on the replica that made them, and
// again only the TTL bounds staleness on the others.
type CachedStore struct {
	next  Store
	cache cache.Cache
	ttl   time.Duration
	log   *slog.Logger

	hits, misses, errs atomic.Uint64
}

// NewCachedStore puts c in front of next, caching notes for ttl. A nil log
// discards the warnings. It panics when next or c is nil or ttl <= 0: an
// entry without expiry would leave the race described on CachedStore
// unbounded.
func NewCachedStore(next Store, c cache.Cache, ttl time.Duration, log *slog.Logger) *CachedStore {
	switch {
	case next == nil || c == nil:
		panic("notes: NewCachedStore needs a store and a cache")
	case ttl <= 0:
		panic("notes: NewCachedStore needs a positive ttl")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &CachedStore{next: next, cache: c, ttl: ttl, log: log}
}

// Stats returns the counters so far. They are read one by one, so a
// snapshot taken under load may be off by the calls in flight.
func (s *CachedStore) Stats() CacheStats {
	return CacheStats{Hits: s.hits.Load(), Misses: s.misses.Load(), Errors: s.errs.Load()}
}

// Check is the status route's view of the read-through cache, "notes:cache":
// the share of reads answered from it so far, and a warning when cache
// failures (each one logged) sent reads to the database since the previous
// check. Redis being down is cache:responseTime's to fail; here it only warns,
// because every request is still served.
func (s *CachedStore) Check() health.Check {
	var lastErrs atomic.Uint64 // a timed-out run may overlap the next one
	return health.Check{Name: "notes:cache", ComponentType: "component", Timeout: time.Second,
		Run: func(context.Context) health.Result {
			st := s.Stats()
			res := health.Result{Status: health.Pass, ObservedUnit: "percent",
				Output: fmt.Sprintf("%d reads from the cache, %d from the database, %d cache failures since start", st.Hits, st.Misses, st.Errors)}
			hitPercent := 0.0
			if reads := st.Hits + st.Misses; reads > 0 {
				hitPercent = math.Round(float64(st.Hits)*1000/float64(reads)) / 10
			}
			res.ObservedValue = hitPercent
			if prev := lastErrs.Swap(st.Errors); st.Errors > prev {
				res.Status = health.Warn
				res.Output = fmt.Sprintf("%d cache failures since the last check (each logged); the database answered instead", st.Errors-prev)
			}
			return res
		}}
}

// Get answers from the cache when it can, and otherwise reads the store and
// caches the result. ErrNotFound is not cached: a note created right after
// would otherwise stay invisible until the TTL ran out.
func (s *CachedStore) Get(ctx context.Context, id string) (Note, error) {
	e, err := s.GetEncoded(ctx, id)
	if err != nil {
		return Note{}, err
	}
	if e.note != nil {
		return *e.note, nil
	}
	var n Note
	if err := json.Unmarshal(e.JSON, &n); err != nil {
		return Note{}, fmt.Errorf("decode cached note: %w", err)
	}
	return n, nil
}

// GetEncoded is Get for the HTTP handler: a cache hit returns the note's
// JSON as stored, which the handler writes as it is, so a hit costs no
// decoding and no encoding (that was a quarter of a cached read's CPU).
// The entry is checked before use: it must be for this id, with a version.
func (s *CachedStore) GetEncoded(ctx context.Context, id string) (EncodedNote, error) {
	key := cacheKeyPrefix + id
	b, ok, err := s.cache.Get(ctx, key)
	switch {
	case err != nil:
		s.cacheFailed(ctx, "get", key, err)
		s.misses.Add(1)
		// Skip the fill: a cache that just failed would most likely fail
		// again, doubling the delay and the log lines for this request.
		n, err := s.next.Get(ctx, id)
		if err != nil {
			return EncodedNote{}, err
		}
		return encodeNote(n)
	case ok:
		if e, ok := decodeEntry(b, id); ok {
			s.hits.Add(1)
			return e, nil
		}
		s.unreadable(ctx, key)
	}
	s.misses.Add(1)
	n, err := s.next.Get(ctx, id)
	if err != nil {
		return EncodedNote{}, err
	}
	e, err := encodeNote(n)
	if err != nil {
		return EncodedNote{}, err
	}
	s.fill(ctx, key, e)
	return e, nil
}

// Create passes through. It does not fill the cache: many notes are never
// read back one by one, and keeping Get the only writer of entries keeps
// the staleness argument above in one place.
func (s *CachedStore) Create(ctx context.Context, in Input) (Note, error) {
	return s.next.Create(ctx, in)
}

// List passes through: pages change with every create, and caching them
// would need invalidation across every page.
func (s *CachedStore) List(ctx context.Context, cursor string, limit int) (Page, error) {
	return s.next.List(ctx, cursor, limit)
}

// Update updates the store, then invalidates the cached note.
func (s *CachedStore) Update(ctx context.Context, id string, in Input, want int64) (Note, error) {
	n, err := s.next.Update(ctx, id, in, want)
	s.invalidate(ctx, id)
	return n, err
}

// Delete deletes from the store, then invalidates the cached note.
func (s *CachedStore) Delete(ctx context.Context, id string, want int64) error {
	err := s.next.Delete(ctx, id, want)
	s.invalidate(ctx, id)
	return err
}

// invalidate deletes the cached note. It runs whatever the store returned:
// an error such as a timeout does not prove the write did not commit, and
// ErrVersionMismatch hints the cached copy is stale; a needless delete only
// costs one miss. It ignores the request's cancellation (a client hanging up
// after its write committed must not leave a stale entry behind) but keeps
// its values for the log, and is bounded by invalidateTimeout instead.
func (s *CachedStore) invalidate(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), invalidateTimeout)
	defer cancel()
	key := cacheKeyPrefix + id
	if err := s.cache.Delete(ctx, key); err != nil {
		s.cacheFailed(ctx, "delete", key, err)
	}
}

// fill caches e after a miss; failing to do so costs only a future miss.
func (s *CachedStore) fill(ctx context.Context, key string, e EncodedNote) {
	if err := s.cache.Set(ctx, key, e.entry(), s.ttl); err != nil {
		s.cacheFailed(ctx, "set", key, err)
	}
}

// unreadable handles an entry that does not decode to the note asked for
// (a bug, a schema change without a key version bump, or tampering): it is
// counted, logged without its bytes, and deleted so it cannot fail again.
func (s *CachedStore) unreadable(ctx context.Context, key string) {
	s.errs.Add(1)
	s.log.WarnContext(ctx, "note cache entry unreadable, treating as a miss",
		"cache", s.cache.Kind(), "key", key)
	if err := s.cache.Delete(ctx, key); err != nil {
		s.cacheFailed(ctx, "delete", key, err)
	}
}

// cacheFailed logs and counts a cache error, but not when the caller
// canceled the request: that says nothing about the cache's health. The
// log never carries cached values, which hold user content.
//
// A call the cache's circuit breaker skipped (cache.ErrSkipped) is not
// logged either: the breaker logs the outage once when it starts and once
// when it ends, which keeps the log readable when Redis is down.
func (s *CachedStore) cacheFailed(ctx context.Context, op, key string, err error) {
	if errors.Is(ctx.Err(), context.Canceled) || errors.Is(err, cache.ErrSkipped) {
		return
	}
	s.errs.Add(1)
	s.log.WarnContext(ctx, "note cache failed, using the store",
		"cache", s.cache.Kind(), "op", op, "key", key, "err", err)
}

var _ Store = (*CachedStore)(nil)

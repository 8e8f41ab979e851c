package cache

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ErrSkipped is what a Breaker returns instead of calling a cache that just
// failed several times in a row. Callers treat it like any cache error (go
// to the source of truth) but need not log it: the Breaker logged the
// outage once when it began and logs it again when it ends.
var ErrSkipped = errors.New("cache skipped while it is failing")

// BreakerOptions tune a Breaker. Zero values take the defaults in brackets.
type BreakerOptions struct {
	// Threshold is how many failures in a row open the breaker [5].
	Threshold int
	// Cooldown is how long the cache is skipped before one call probes it [5s].
	Cooldown time.Duration
	// Logger receives the outage's start (warn) and end (info) [discard].
	Logger *slog.Logger
	// Fallback, when set, serves the calls the breaker skips: during an
	// outage reads are cached in the process (as with no Redis configured)
	// instead of every one going to the database. It is emptied when the
	// cache answers again. Nil: skipped calls return ErrSkipped.
	Fallback Cache
}

// maxLostInvalidations bounds the keys a Breaker remembers deleting during
// an outage, to delete them from the cache once it is back.
const maxLostInvalidations = 10_000

// Breaker is a circuit breaker in front of a Cache. While the cache works it
// passes every call through. After Threshold failures in a row it opens:
// calls return ErrSkipped at once, so a dead or frozen Redis costs a request
// nothing instead of a timeout, and reads go straight to the database. After
// Cooldown one call is let through as a probe: success closes the breaker,
// failure opens it for another Cooldown. The outage is logged twice, when it
// starts and when it ends (with how many calls were skipped), never once per
// request.
//
// With a Fallback, the calls it skips go to the fallback instead. Deletes
// skipped during an outage (invalidations after an update or a delete) are
// remembered, up to maxLostInvalidations, and sent to the cache when it
// answers again, so the entries it still holds from before the outage do
// not outlive the writes made during it; past the bound, the count is
// logged and those entries live until their TTL.
//
// Ping, Kind and Close pass through untouched, so the status route always
// sees the real state of the cache.
type Breaker struct {
	next      Cache
	fallback  Cache
	threshold int
	cooldown  time.Duration
	log       *slog.Logger
	now       func() time.Time

	mu       sync.Mutex
	failures int                 // in a row, while closed
	open     bool                // skipping calls
	since    time.Time           // when the breaker opened
	retryAt  time.Time           // when the next probe may go
	probing  bool                // a probe is in flight
	skipped  uint64              // calls skipped during this outage
	lost     map[string]struct{} // keys deleted during this outage
	overflow int                 // deletes past maxLostInvalidations
	// pending are the lost keys whose replay has not deleted them from the
	// cache yet: a read of one is a miss, never what the cache still holds
	// from before the write that invalidated it.
	pending    map[string]struct{}
	anyPending atomic.Bool // len(pending) > 0: a hit needs no lock otherwise
}

// NewBreaker puts a circuit breaker in front of next.
func NewBreaker(next Cache, o BreakerOptions) *Breaker {
	if o.Threshold <= 0 {
		o.Threshold = 5
	}
	if o.Cooldown <= 0 {
		o.Cooldown = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Breaker{next: next, fallback: o.Fallback, threshold: o.Threshold, cooldown: o.Cooldown, log: o.Logger, now: time.Now}
}

// Get passes through unless the breaker is open.
func (b *Breaker) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if !b.allow() {
		if b.fallback != nil {
			return b.fallback.Get(ctx, key)
		}
		return nil, false, ErrSkipped
	}
	v, ok, err := b.next.Get(ctx, key)
	b.record(ctx, err)
	if ok && b.isPending(key) {
		return nil, false, nil // invalidated during the outage, not deleted from the cache yet
	}
	return v, ok, err
}

// isPending reports whether key's invalidation is still to be replayed.
func (b *Breaker) isPending(key string) bool {
	if !b.anyPending.Load() {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.pending[key]
	return ok
}

// Set passes through unless the breaker is open.
func (b *Breaker) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if !b.allow() {
		if b.fallback != nil {
			return b.fallback.Set(ctx, key, value, ttl)
		}
		return ErrSkipped
	}
	err := b.next.Set(ctx, key, value, ttl)
	b.record(ctx, err)
	return err
}

// Delete passes through unless the breaker is open. A skipped or failed
// delete is remembered and sent again when the cache is back. The fallback
// loses the key either way: a delete that goes to the cache as the probe
// and fails must not leave the fallback serving what it invalidated.
func (b *Breaker) Delete(ctx context.Context, key string) error {
	if b.fallback != nil {
		_ = b.fallback.Delete(ctx, key) // in-process: it cannot fail
	}
	if !b.allow() {
		b.remember(key)
		if b.fallback != nil {
			return nil
		}
		return ErrSkipped
	}
	err := b.next.Delete(ctx, key)
	if err != nil {
		b.remember(key)
	}
	b.record(ctx, err)
	return err
}

// remember notes an invalidation the cache did not get.
func (b *Breaker) remember(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lost == nil {
		b.lost = make(map[string]struct{})
	}
	if _, ok := b.lost[key]; !ok && len(b.lost) >= maxLostInvalidations {
		b.overflow++
		// Past the bound the key is not replayed, so it cannot wait for a
		// replay either: it lives until its TTL, as the docs say.
		b.dropPending(key)
		return
	}
	b.lost[key] = struct{}{}
	if b.pending == nil {
		b.pending = make(map[string]struct{})
	}
	b.pending[key] = struct{}{}
	b.anyPending.Store(true)
}

// dropPending lets key be read from the cache again; b.mu must be held.
func (b *Breaker) dropPending(key string) {
	delete(b.pending, key)
	b.anyPending.Store(len(b.pending) > 0)
}

// recovered runs once the cache answers after failing: it empties the
// fallback after an outage and deletes from the cache the keys whose
// invalidation it missed.
func (b *Breaker) recovered(wasOpen bool, lost map[string]struct{}, overflow int) {
	if wasOpen && b.fallback != nil {
		_ = b.fallback.Close() // Memory.Close empties it and leaves it usable
	}
	if len(lost) == 0 && overflow == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	failed := 0
	for key := range lost {
		if err := b.next.Delete(ctx, key); err != nil {
			failed++
			b.remember(key) // the next recovery tries again; reads stay misses
			continue
		}
		b.mu.Lock()
		if _, again := b.lost[key]; !again { // invalidated again meanwhile: the next replay clears it
			b.dropPending(key)
		}
		b.mu.Unlock()
	}
	b.log.Info("cache back: invalidations made during the outage sent to it",
		"cache", b.next.Kind(), "sent", len(lost)-failed, "failed", failed, "beyond_limit", overflow)
}

// Ping always asks the cache itself, whatever the breaker's state.
func (b *Breaker) Ping(ctx context.Context) error { return b.next.Ping(ctx) }

// Kind names the cache behind the breaker.
func (b *Breaker) Kind() string { return b.next.Kind() }

// Close closes the cache behind the breaker.
func (b *Breaker) Close() error { return b.next.Close() }

// allow says whether a call may go to the cache: always while closed; while
// open, only one probe once the cool-down has passed.
func (b *Breaker) allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return true
	}
	if !b.probing && !b.now().Before(b.retryAt) {
		b.probing = true
		return true
	}
	b.skipped++
	return false
}

// record counts the outcome of a call that allow let through.
func (b *Breaker) record(ctx context.Context, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	wasProbe := b.probing
	b.probing = false
	switch {
	case err == nil:
		if b.open {
			b.log.Info("cache answering again; using it",
				"cache", b.next.Kind(), "skipped", b.skipped, "outage_s", b.now().Sub(b.since).Round(time.Millisecond).Seconds())
		}
		if b.open || len(b.lost) > 0 {
			lost, overflow := b.lost, b.overflow
			b.lost, b.overflow = nil, 0
			// Not the caller's context: the replay must outlive the request
			// whose call found the cache back (it has its own timeout).
			go b.recovered(b.open, lost, overflow) // #nosec G118
		}
		b.open, b.failures, b.skipped = false, 0, 0
	case errors.Is(ctx.Err(), context.Canceled):
		// The caller went away: that says nothing about the cache. A probe
		// cut short this way is simply tried again by the next call.
	case wasProbe:
		b.retryAt = b.now().Add(b.cooldown)
	case !b.open:
		b.failures++
		if b.failures >= b.threshold {
			b.open, b.since, b.retryAt, b.skipped = true, b.now(), b.now().Add(b.cooldown), 0
			if b.fallback != nil {
				// Nothing left from an earlier outage may be served in this one.
				_ = b.fallback.Close()
			}
			b.log.Warn("cache failing; skipping it (reads use the in-process cache when one is set, else the database), probing every cool-down",
				"cache", b.next.Kind(), "failures_in_a_row", b.failures, "cooldown", b.cooldown.String(), "error", err.Error())
		}
	}
}

var _ Cache = (*Breaker)(nil)

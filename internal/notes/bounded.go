package notes

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prodready/service/internal/health"
)

// ErrUnavailable wraps a store error that means the database could not
// answer in time or at all (see database.Unavailable): the HTTP layer
// answers 503 with Retry-After instead of 500, since retrying later may work.
var ErrUnavailable = errors.New("notes store unavailable")

// BoundedStore puts a deadline on every call to the Store behind it, so one
// request's database work (waiting for a pooled connection, connecting, each
// statement) ends within timeout even when the network drops every packet.
// The deadline is what frees the pooled connection: the driver closes a
// connection whose context ends mid-query, so a partition can never hold
// the whole pool. Errors that unavailable recognises are wrapped in
// ErrUnavailable; a caller that went away keeps its context.Canceled.
type BoundedStore struct {
	next        Store
	timeout     time.Duration
	unavailable func(error) bool
	// Calls answered and calls the database failed (ErrUnavailable), for
	// the notes:store check: what requests meet, which a probe of its own
	// does not always see (a table lock, a read-only file, I/O errors).
	answered, failed atomic.Uint64

	// A breaker: after failFastAfter failures in a row, calls fail at once
	// for failFastFor, then one call probes the database. Without it every
	// request waits the whole timeout for a database that is gone, and
	// holds a shedding slot meanwhile: the slots fill with them, and the
	// requests the cache could answer are refused too.
	mu        sync.Mutex
	inARow    uint64    // failed calls since the last answered one, fast failures too
	openUntil time.Time // while in the future, calls fail at once
	probing   bool
}

// failFastAfter failures in a row open the breaker, for failFastFor.
const (
	failFastAfter = 5
	failFastFor   = 2 * time.Second
)

// errFailingFast is the cause of a call not sent to the database.
var errFailingFast = fmt.Errorf("the database failed the last %d calls in a row; calls fail at once for %s, then one probes it", failFastAfter, failFastFor)

// allow says whether a call goes to the database: not while the breaker
// is open, except one probe once its time is up.
func (s *BoundedStore) allow() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.openUntil.IsZero() {
		return true
	}
	if time.Now().Before(s.openUntil) || s.probing {
		s.inARow++ // failed at once: one more in a row
		return false
	}
	s.probing = true
	return true
}

// record counts a call's outcome for the breaker: failed says the database
// failed it (ErrUnavailable).
func (s *BoundedStore) record(failed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wasProbe := s.probing
	s.probing = false
	if !failed {
		s.inARow, s.openUntil = 0, time.Time{}
		return
	}
	s.inARow++
	if wasProbe || s.inARow >= failFastAfter {
		s.openUntil = time.Now().Add(failFastFor)
	}
}

// bounded runs call under the timeout and the breaker.
func bounded[T any](s *BoundedStore, ctx context.Context, call func(context.Context) (T, error)) (T, error) {
	if !s.allow() {
		s.failed.Add(1)
		var zero T
		return zero, fmt.Errorf("%w: %w", ErrUnavailable, errFailingFast)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	v, err := call(ctx)
	err = s.classify(ctx, err)
	if !errors.Is(context.Cause(ctx), context.Canceled) || err == nil {
		s.record(errors.Is(err, ErrUnavailable))
	} else {
		s.mu.Lock()
		s.probing = false // the caller left: the probe proved nothing
		s.mu.Unlock()
	}
	return v, err
}

// NewBoundedStore bounds every call to next by timeout. It panics when next
// or unavailable is nil or timeout <= 0: an unbounded store is what this
// type exists to prevent.
func NewBoundedStore(next Store, timeout time.Duration, unavailable func(error) bool) *BoundedStore {
	if next == nil || unavailable == nil || timeout <= 0 {
		panic("notes: NewBoundedStore needs a store, a classifier and a positive timeout")
	}
	return &BoundedStore{next: next, timeout: timeout, unavailable: unavailable}
}

// Create bounds Store.Create.
func (s *BoundedStore) Create(ctx context.Context, in Input) (Note, error) {
	return bounded(s, ctx, func(ctx context.Context) (Note, error) { return s.next.Create(ctx, in) })
}

// Get bounds Store.Get.
func (s *BoundedStore) Get(ctx context.Context, id string) (Note, error) {
	return bounded(s, ctx, func(ctx context.Context) (Note, error) { return s.next.Get(ctx, id) })
}

// List bounds Store.List.
func (s *BoundedStore) List(ctx context.Context, cursor string, limit int) (Page, error) {
	return bounded(s, ctx, func(ctx context.Context) (Page, error) { return s.next.List(ctx, cursor, limit) })
}

// Update bounds Store.Update.
func (s *BoundedStore) Update(ctx context.Context, id string, in Input, want int64) (Note, error) {
	return bounded(s, ctx, func(ctx context.Context) (Note, error) { return s.next.Update(ctx, id, in, want) })
}

// Delete bounds Store.Delete.
func (s *BoundedStore) Delete(ctx context.Context, id string, want int64) error {
	_, err := bounded(s, ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, s.next.Delete(ctx, id, want) })
	return err
}

// classify wraps err in ErrUnavailable when it is the database's failure.
// ErrNotFound and ErrVersionMismatch are answers, and a context the caller
// canceled is the caller's doing: both pass unchanged.
func (s *BoundedStore) classify(ctx context.Context, err error) error {
	switch {
	case err == nil, errors.Is(err, ErrNotFound), errors.Is(err, ErrVersionMismatch):
		s.answered.Add(1)
		return err
	case errors.Is(context.Cause(ctx), context.Canceled):
		return err
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		s.failed.Add(1)
		return fmt.Errorf("%w: no answer within %s: %w", ErrUnavailable, s.timeout, err)
	case s.unavailable(err):
		s.failed.Add(1)
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// storeFailAfter failed calls in a row (over one run or several, none
// answered) make notes:store fail; fewer only warn: one failed call in a
// quiet moment is not an outage worth a mail (a fail, then a recovery).
const storeFailAfter = 3

// Check is notes:store on /status: how the requests' own database calls
// fared since the previous run. The database checks probe with a query of
// their own, which passes while every request fails on what the probe does
// not touch: a lock held on the notes table, a database file that cannot
// be written, I/O errors. It warns when some calls failed since the last
// run, and fails when all did, storeFailAfter at least; with no calls it
// passes.
func (s *BoundedStore) Check() health.Check {
	var mu sync.Mutex // a timed-out run may overlap the next one
	var lastAnswered, lastFailed uint64
	return health.Check{Name: "notes:store", ComponentType: "datastore", Timeout: time.Second,
		Run: func(context.Context) health.Result {
			answered, failed := s.answered.Load(), s.failed.Load()
			mu.Lock()
			a, f := answered-lastAnswered, failed-lastFailed
			lastAnswered, lastFailed = answered, failed
			mu.Unlock()
			s.mu.Lock()
			row := s.inARow
			s.mu.Unlock()
			failing := a == 0 && f > 0 && row >= storeFailAfter // light traffic adds up over runs
			res := health.Result{Status: health.Pass, ObservedValue: f, ObservedUnit: "failed calls",
				Output: fmt.Sprintf("%d requests' store calls answered since the last check, none failed", a)}
			switch {
			case failing:
				res.Status = health.Fail
				res.Output = fmt.Sprintf("all %d requests' store calls since the last check failed (%d in a row; 503 to the client, each logged): the database does not answer requests, whatever its probe says (a lock, a file it cannot write, I/O errors)", f, row)
			case f > 0:
				res.Status = health.Warn
				res.Output = fmt.Sprintf("%d of %d requests' store calls since the last check failed (503 to the client, each logged)", f, f+a)
			}
			return res
		}}
}

var _ Store = (*BoundedStore)(nil)

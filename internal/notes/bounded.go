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
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	n, err := s.next.Create(ctx, in)
	return n, s.classify(ctx, err)
}

// Get bounds Store.Get.
func (s *BoundedStore) Get(ctx context.Context, id string) (Note, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	n, err := s.next.Get(ctx, id)
	return n, s.classify(ctx, err)
}

// List bounds Store.List.
func (s *BoundedStore) List(ctx context.Context, cursor string, limit int) (Page, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	p, err := s.next.List(ctx, cursor, limit)
	return p, s.classify(ctx, err)
}

// Update bounds Store.Update.
func (s *BoundedStore) Update(ctx context.Context, id string, in Input, want int64) (Note, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	n, err := s.next.Update(ctx, id, in, want)
	return n, s.classify(ctx, err)
}

// Delete bounds Store.Delete.
func (s *BoundedStore) Delete(ctx context.Context, id string, want int64) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.classify(ctx, s.next.Delete(ctx, id, want))
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

// Check is notes:store on /status: how the requests' own database calls
// fared since the previous run. The database checks probe with a query of
// their own, which passes while every request fails on what the probe does
// not touch: a lock held on the notes table, a database file that cannot
// be written, I/O errors. It warns when some calls failed since the last
// run, and fails when all did; with no calls it passes.
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
			res := health.Result{Status: health.Pass, ObservedValue: f, ObservedUnit: "failed calls",
				Output: fmt.Sprintf("%d requests' store calls answered since the last check, none failed", a)}
			switch {
			case f > 0 && a == 0:
				res.Status = health.Fail
				res.Output = fmt.Sprintf("all %d requests' store calls since the last check failed (503 to the client, each logged): the database does not answer requests, whatever its probe says (a lock, a file it cannot write, I/O errors)", f)
			case f > 0:
				res.Status = health.Warn
				res.Output = fmt.Sprintf("%d of %d requests' store calls since the last check failed (503 to the client, each logged)", f, f+a)
			}
			return res
		}}
}

var _ Store = (*BoundedStore)(nil)

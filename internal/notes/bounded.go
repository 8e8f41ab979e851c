package notes

import (
	"context"
	"errors"
	"fmt"
	"time"
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
		return err
	case errors.Is(context.Cause(ctx), context.Canceled):
		return err
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%w: no answer within %s: %w", ErrUnavailable, s.timeout, err)
	case s.unavailable(err):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

var _ Store = (*BoundedStore)(nil)

package notes_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/mock/gomock"

	"github.com/prodready/service/internal/health"
	"github.com/prodready/service/internal/notes"
)

var errGone = errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")

// TestBoundedStore_FailsFastWhileTheDatabaseIsGone: after five failures in
// a row, calls fail at once (ErrUnavailable, no call to the database) for
// two seconds, so requests stop holding their shedding slots for the whole
// timeout and the ones the cache can answer are still served; then one
// call probes the database, and its success closes the breaker. An answer
// that is not a failure (not found) counts as the database answering.
func TestBoundedStore_FailsFastWhileTheDatabaseIsGone(t *testing.T) {
	ctrl := gomock.NewController(t) // fails on a call the breaker should have kept from the database
	next := NewMockStore(ctrl)
	s := notes.NewBoundedStore(next, time.Second, func(err error) bool { return errors.Is(err, errGone) })
	ctx := context.Background()
	check := s.Check()

	next.EXPECT().Get(gomock.Any(), "a").Return(notes.Note{}, errGone).Times(5)
	for i := range 5 {
		if _, err := s.Get(ctx, "a"); !errors.Is(err, notes.ErrUnavailable) {
			t.Fatalf("call %d: %v, want ErrUnavailable", i+1, err)
		}
	}
	start := time.Now()
	for range 20 { // none reaches the database
		if _, err := s.Get(ctx, "a"); !errors.Is(err, notes.ErrUnavailable) || time.Since(start) > time.Second {
			t.Fatalf("while failing fast: %v after %s, want ErrUnavailable at once", err, time.Since(start))
		}
	}
	if r := check.Run(ctx); r.ObservedValue != uint64(25) {
		t.Errorf("notes:store counted %v failed calls, want 25 (the fast failures too)", r.ObservedValue)
	}

	time.Sleep(2100 * time.Millisecond)
	next.EXPECT().Get(gomock.Any(), "a").Return(notes.Note{}, notes.ErrNotFound) // the probe: the database answers
	if _, err := s.Get(ctx, "a"); !errors.Is(err, notes.ErrNotFound) {
		t.Fatalf("the probe: %v, want the database's answer", err)
	}
	next.EXPECT().Get(gomock.Any(), "b").Return(notes.Note{ID: "b"}, nil)
	if n, err := s.Get(ctx, "b"); err != nil || n.ID != "b" {
		t.Fatalf("after the probe: %v %v, want the breaker closed", n, err)
	}
	_ = check.Run(ctx) // start a new interval
	next.EXPECT().Get(gomock.Any(), "c").Return(notes.Note{}, errGone)
	next.EXPECT().Get(gomock.Any(), "d").Return(notes.Note{ID: "d"}, nil)
	_, _ = s.Get(ctx, "c")
	_, _ = s.Get(ctx, "d")
	if r := check.Run(ctx); r.Status != health.Warn || !strings.Contains(r.Output, "1 of 2") {
		t.Errorf("one call failed, one answered: %+v, want warn", r)
	}
	// Light traffic: one failed call between two runs, run after run, is
	// an outage too once three have failed in a row.
	next.EXPECT().Get(gomock.Any(), "e").Return(notes.Note{}, errGone).Times(3)
	want := []health.Status{health.Warn, health.Warn, health.Fail}
	for i, w := range want {
		_, _ = s.Get(ctx, "e")
		if r := check.Run(ctx); r.Status != w {
			t.Errorf("run %d with one failed call each: %+v, want %s", i+1, r, w)
		}
	}
}

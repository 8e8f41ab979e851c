package notes_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prodready/service/internal/database"
	"github.com/prodready/service/internal/health"
	"github.com/prodready/service/internal/notes"
	"github.com/prodready/service/internal/servicetest"
)

// TestStoreCheck_SeesWhatRequestsMeet: a lock another session holds on the
// notes table makes every request's store call fail (503) while the
// database answers the status route's own probe; notes:store says so:
// warn for a call that failed, fail while every call of several fails,
// pass once they are answered again. Real PostgreSQL, a real lock.
func TestStoreCheck_SeesWhatRequestsMeet(t *testing.T) {
	url := servicetest.PostgresURL(t)
	db, err := database.Open(t.Context(), database.Options{URL: url, MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := database.Migrate(t.Context(), db, nil, notes.Migrations()); err != nil {
		t.Fatal(err)
	}
	store := notes.NewBoundedStore(notes.NewBunStore(db), 300*time.Millisecond, database.Unavailable)
	check := store.Check()
	run := func() health.Result { return check.Run(context.Background()) }
	create := func() error { _, err := store.Create(t.Context(), notes.Input{Title: "t", Body: "b"}); return err }

	if r := run(); r.Status != health.Pass {
		t.Fatalf("no calls yet: %+v, want pass", r)
	}
	if err := create(); err != nil {
		t.Fatal(err)
	}
	_, unlock := servicetest.HoldInSession(t, url, "LOCK TABLE notes IN ACCESS EXCLUSIVE MODE")
	if r := run(); r.Status != health.Pass { // the one call before the lock
		t.Errorf("one call answered: %+v, want pass", r)
	}
	if err := create(); !errors.Is(err, notes.ErrUnavailable) {
		t.Fatalf("a create under the lock: %v, want ErrUnavailable", err)
	}
	if r := run(); r.Status != health.Warn {
		t.Errorf("one call failing in a quiet moment: %+v, want warn, not yet fail", r)
	}
	for range 3 {
		if err := create(); !errors.Is(err, notes.ErrUnavailable) {
			t.Fatalf("a create under the lock: %v, want ErrUnavailable", err)
		}
	}
	if r := run(); r.Status != health.Fail || !strings.Contains(r.Output, "all 3 requests' store calls since the last check failed") {
		t.Errorf("every call failing: %+v, want fail saying so", r)
	}
	unlock()
	if err := create(); err != nil {
		t.Fatal(err)
	}
	if r := run(); r.Status != health.Pass {
		t.Errorf("answered again: %+v, want pass", r)
	}
	if r := run(); r.Status != health.Pass {
		t.Errorf("no call since the last check: %+v, want pass", r)
	}
}

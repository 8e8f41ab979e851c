package notes_test

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prodready/service/internal/database"
	"github.com/prodready/service/internal/notes"
	"github.com/prodready/service/internal/servicetest"
)

// stores are the databases every behaviour runs on, each a fresh one.
var stores = []struct {
	name string
	open func(t *testing.T) notes.Store
}{
	{"sqlite", func(t *testing.T) notes.Store {
		return openStore(t, database.Options{SQLitePath: filepath.Join(t.TempDir(), "notes.db"), BusyTimeout: 5 * time.Second})
	}},
	{"postgres", func(t *testing.T) notes.Store {
		return openStore(t, database.Options{URL: servicetest.PostgresURL(t), MaxOpenConns: 10})
	}},
}

// forEachStore runs behaviour on a fresh BunStore over each database, in
// parallel. Without TEST_DATABASE_URL the postgres run skips loudly (fails
// under REQUIRE_SERVICES=1).
func forEachStore(t *testing.T, behaviour func(t *testing.T, s notes.Store)) {
	t.Parallel()
	for _, db := range stores {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			behaviour(t, db.open(t))
		})
	}
}

// openStore opens and migrates a fresh database; each scenario gets its own.
func openStore(t *testing.T, o database.Options) notes.Store {
	t.Helper()
	db, err := database.Open(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := database.Migrate(t.Context(), db, slog.New(slog.DiscardHandler), notes.Migrations()); err != nil {
		t.Fatal(err)
	}
	return notes.NewBunStore(db)
}

// The contract every notes.Store must meet, written as what a client of
// the API would observe: one test per behaviour, each run on SQLite and
// on PostgreSQL (forEachStore).

// TestStore_CreateAssignsIDVersion1AndUTCTimestamps: create assigns id, version 1 and equal UTC timestamps.
func TestStore_CreateAssignsIDVersion1AndUTCTimestamps(t *testing.T) {
	forEachStore(t, func(t *testing.T, s notes.Store) {
		before := time.Now()
		n := mustCreate(t, s, "groceries", "milk, eggs")
		if n.ID == "" || n.Version != 1 || n.Title != "groceries" || n.Body != "milk, eggs" {
			t.Fatalf("created %+v; want an id, version 1 and the input", n)
		}
		if !n.CreatedAt.Equal(n.UpdatedAt) || n.CreatedAt.Location() != time.UTC {
			t.Errorf("timestamps %v / %v; want equal, in UTC", n.CreatedAt, n.UpdatedAt)
		}
		if d := n.CreatedAt.Sub(before); d < -time.Millisecond || d > time.Minute {
			t.Errorf("created_at %v is not about now (%v)", n.CreatedAt, before)
		}
		if other := mustCreate(t, s, "groceries", ""); other.ID == n.ID {
			t.Errorf("two notes share id %s", n.ID)
		}
	})
}

// TestStore_GetReturnsWhatCreateReturned: get returns exactly what create returned.
func TestStore_GetReturnsWhatCreateReturned(t *testing.T) {
	forEachStore(t, func(t *testing.T, s notes.Store) {
		for _, in := range []notes.Input{
			{Title: "plain", Body: ""},
			{Title: "Größe 🚀 日本語 — ok", Body: "quotes ' \" and \\ backslash\nnew line"},
		} {
			n := mustCreate(t, s, in.Title, in.Body)
			got, err := s.Get(t.Context(), n.ID)
			if err != nil {
				t.Fatal(err)
			}
			// == rather than Equal: same instant, same location, nothing lost.
			if got != n {
				t.Errorf("get\n got %+v\nwant %+v", got, n)
			}
		}
	})
}

// TestStore_GetUnknownIDIsNotFound: get unknown id is ErrNotFound.
func TestStore_GetUnknownIDIsNotFound(t *testing.T) {
	forEachStore(t, func(t *testing.T, s notes.Store) {
		for _, id := range []string{"01890000-0000-7000-8000-000000000000", "not-a-uuid", ""} {
			if _, err := s.Get(t.Context(), id); !errors.Is(err, notes.ErrNotFound) {
				t.Errorf("get %q: err = %v; want ErrNotFound", id, err)
			}
		}
	})
}

// TestStore_ListPagesThroughEveryNoteOnceInCreationOrder: list pages through every note once, in creation order.
func TestStore_ListPagesThroughEveryNoteOnceInCreationOrder(t *testing.T) {
	forEachStore(t, func(t *testing.T, s notes.Store) {
		var want []string
		for i := range 7 {
			want = append(want, mustCreate(t, s, fmt.Sprintf("note %d", i), "").ID)
		}
		var got []string
		var sizes []int
		cursor := ""
		for range 10 { // bounded: a broken cursor must not loop forever
			page, err := s.List(t.Context(), cursor, 3)
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, len(page.Items))
			for _, n := range page.Items {
				got = append(got, n.ID)
			}
			if page.NextCursor == "" {
				break
			}
			cursor = page.NextCursor
		}
		if fmt.Sprint(sizes) != "[3 3 1]" {
			t.Errorf("page sizes %v; want [3 3 1]", sizes)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("listed\n %v\nwant (creation order)\n %v", got, want)
		}
	})
}

// TestStore_ListEdgeCases: list edge cases.
func TestStore_ListEdgeCases(t *testing.T) {
	forEachStore(t, func(t *testing.T, s notes.Store) {
		page, err := s.List(t.Context(), "", 5)
		if err != nil || len(page.Items) != 0 || page.Items == nil || page.NextCursor != "" {
			t.Fatalf("empty store: %+v, %v; want no items (non-nil) and no cursor", page, err)
		}
		a := mustCreate(t, s, "a", "")
		b := mustCreate(t, s, "b", "")
		// Exactly limit notes left: no next page.
		if page, _ := s.List(t.Context(), "", 2); len(page.Items) != 2 || page.NextCursor != "" {
			t.Errorf("limit = count: %+v; want 2 items and no cursor", page)
		}
		// A cursor naming a deleted note still works: it is a position, not a reference.
		if err := s.Delete(t.Context(), a.ID, notes.AnyVersion); err != nil {
			t.Fatal(err)
		}
		if page, _ := s.List(t.Context(), a.ID, 2); len(page.Items) != 1 || page.Items[0].ID != b.ID {
			t.Errorf("after deleted cursor: %+v; want just %s", page, b.ID)
		}
		// Malformed cursors are not errors either.
		if _, err := s.List(t.Context(), "garbage ' OR 1=1 --", 2); err != nil {
			t.Errorf("malformed cursor: %v", err)
		}
		if _, err := s.List(t.Context(), "", 0); err == nil {
			t.Error("limit 0: want an error")
		}
	})
}

// TestStore_UpdateWithCurrentVersionBumpsVersionAndUpdatedAt: update with the current version bumps version and updated_at.
func TestStore_UpdateWithCurrentVersionBumpsVersionAndUpdatedAt(t *testing.T) {
	forEachStore(t, func(t *testing.T, s notes.Store) {
		n := mustCreate(t, s, "draft", "v1")
		time.Sleep(2 * time.Millisecond) // let the clock move past created_at
		u, err := s.Update(t.Context(), n.ID, notes.Input{Title: "final", Body: "v2"}, n.Version)
		if err != nil {
			t.Fatal(err)
		}
		if u.ID != n.ID || u.Title != "final" || u.Body != "v2" || u.Version != 2 {
			t.Errorf("updated %+v; want same id, new fields, version 2", u)
		}
		if !u.CreatedAt.Equal(n.CreatedAt) || !u.UpdatedAt.After(n.UpdatedAt) {
			t.Errorf("timestamps created %v->%v updated %v->%v; want created kept, updated later",
				n.CreatedAt, u.CreatedAt, n.UpdatedAt, u.UpdatedAt)
		}
		if got := mustGet(t, s, n.ID); got != u {
			t.Errorf("stored %+v; want what update returned %+v", got, u)
		}
	})
}

// TestStore_UpdateWithStaleVersionChangesNothing: update with a stale version is ErrVersionMismatch and changes nothing.
func TestStore_UpdateWithStaleVersionChangesNothing(t *testing.T) {
	forEachStore(t, func(t *testing.T, s notes.Store) {
		n := mustCreate(t, s, "draft", "")
		cur, err := s.Update(t.Context(), n.ID, notes.Input{Title: "second"}, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, stale := range []int64{1, 3, -1} {
			_, err := s.Update(t.Context(), n.ID, notes.Input{Title: "lost update"}, stale)
			if !errors.Is(err, notes.ErrVersionMismatch) {
				t.Errorf("update with version %d: err = %v; want ErrVersionMismatch", stale, err)
			}
		}
		if got := mustGet(t, s, n.ID); got != cur {
			t.Errorf("after rejected updates %+v; want unchanged %+v", got, cur)
		}
	})
}

// TestStore_UpdateWithAnyVersionSkipsTheCheck: update with AnyVersion skips the check.
func TestStore_UpdateWithAnyVersionSkipsTheCheck(t *testing.T) {
	forEachStore(t, func(t *testing.T, s notes.Store) {
		n := mustCreate(t, s, "draft", "")
		for want := int64(2); want <= 3; want++ {
			u, err := s.Update(t.Context(), n.ID, notes.Input{Title: "forced"}, notes.AnyVersion)
			if err != nil || u.Version != want {
				t.Fatalf("forced update: %+v, %v; want version %d", u, err, want)
			}
		}
	})
}

// TestStore_UpdateAndDeleteOfUnknownIDAreNotFound: update and delete of an unknown id are ErrNotFound.
func TestStore_UpdateAndDeleteOfUnknownIDAreNotFound(t *testing.T) {
	forEachStore(t, func(t *testing.T, s notes.Store) {
		const id = "01890000-0000-7000-8000-000000000000"
		for _, want := range []int64{notes.AnyVersion, 1} {
			if _, err := s.Update(t.Context(), id, notes.Input{Title: "x"}, want); !errors.Is(err, notes.ErrNotFound) {
				t.Errorf("update (version %d): err = %v; want ErrNotFound", want, err)
			}
			if err := s.Delete(t.Context(), id, want); !errors.Is(err, notes.ErrNotFound) {
				t.Errorf("delete (version %d): err = %v; want ErrNotFound", want, err)
			}
		}
	})
}

// TestStore_DeleteWithStaleVersionKeepsTheNote: delete with a stale version is ErrVersionMismatch and keeps the note.
func TestStore_DeleteWithStaleVersionKeepsTheNote(t *testing.T) {
	forEachStore(t, func(t *testing.T, s notes.Store) {
		n := mustCreate(t, s, "keep me", "")
		if err := s.Delete(t.Context(), n.ID, 2); !errors.Is(err, notes.ErrVersionMismatch) {
			t.Errorf("err = %v; want ErrVersionMismatch", err)
		}
		if got := mustGet(t, s, n.ID); got != n {
			t.Errorf("after rejected delete %+v; want %+v", got, n)
		}
	})
}

// TestStore_DeleteWithCurrentVersionRemovesTheNote: delete with the current version removes the note.
func TestStore_DeleteWithCurrentVersionRemovesTheNote(t *testing.T) {
	forEachStore(t, func(t *testing.T, s notes.Store) {
		for _, want := range []int64{1, notes.AnyVersion} {
			n := mustCreate(t, s, "bye", "")
			if err := s.Delete(t.Context(), n.ID, want); err != nil {
				t.Fatalf("delete (version %d): %v", want, err)
			}
			if _, err := s.Get(t.Context(), n.ID); !errors.Is(err, notes.ErrNotFound) {
				t.Errorf("get after delete: err = %v; want ErrNotFound", err)
			}
			if err := s.Delete(t.Context(), n.ID, notes.AnyVersion); !errors.Is(err, notes.ErrNotFound) {
				t.Errorf("second delete: err = %v; want ErrNotFound", err)
			}
		}
	})
}

// TestStore_ConcurrentUpdatesOfOneVersionExactlyOneWins: concurrent updates of the same version: exactly one wins.
func TestStore_ConcurrentUpdatesOfOneVersionExactlyOneWins(t *testing.T) {
	forEachStore(t, func(t *testing.T, s notes.Store) {
		n := mustCreate(t, s, "contended", "")
		const writers = 8
		var (
			mu        sync.Mutex
			winners   []notes.Note
			conflicts int
			wg        sync.WaitGroup
		)
		start := make(chan struct{})
		for i := range writers {
			wg.Go(func() {
				<-start // release all writers together to maximise overlap
				u, err := s.Update(t.Context(), n.ID, notes.Input{Title: fmt.Sprintf("writer %d", i)}, n.Version)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					winners = append(winners, u)
				case errors.Is(err, notes.ErrVersionMismatch):
					conflicts++
				default:
					t.Errorf("writer %d: %v", i, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if len(winners) != 1 || conflicts != writers-1 {
			t.Fatalf("%d winners, %d conflicts; want 1 and %d", len(winners), conflicts, writers-1)
		}
		if got := mustGet(t, s, n.ID); got != winners[0] || got.Version != 2 {
			t.Errorf("stored %+v; want the winner's write %+v at version 2", got, winners[0])
		}
	})
}

func mustCreate(t *testing.T, s notes.Store, title, body string) notes.Note {
	t.Helper()
	n, err := s.Create(t.Context(), notes.Input{Title: title, Body: body})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mustGet(t *testing.T, s notes.Store, id string) notes.Note {
	t.Helper()
	n, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

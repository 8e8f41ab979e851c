// Package notes is the sample resource, whole in one package: plain types,
// validation and text rules (note.go, text.go), the storage contract (Store)
// and its layers (BunStore in bunstore.go on a bun database; BoundedStore,
// a time bound per request; CachedStore, a read-through cache over
// internal/cache with its status check), the HTTP handlers (api.go), the
// one list of its routes (routes.go), its schema (migrations/) and, in
// resource.go, what the service mounts: its configuration section (notes.*),
// its migrations, routes and check. internal/resources lists it; nothing else
// imports it, so removing it is deleting this package and that line
// (docs/NEW_SERVICE.md).
package notes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits a client can rely on; they are part of the API contract and documented in README.md.
const (
	MaxTitleLen = 200   // characters
	MaxBodyLen  = 10000 // characters
)

// Note is one stored note. Version starts at 1 and grows by one on every update;
// it is the ETag clients send back in If-Match for optimistic concurrency.
type Note struct {
	ID        string    `json:"id"`
	Title     string    `json:"title"`
	Body      string    `json:"body"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Input is what a client may set on create or update.
type Input struct {
	Title string `json:"title"`
	Body  string `json:"body"`
}

// FieldError names one invalid field, for the problem+json "errors" list.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Validate returns every problem with in, not just the first, each naming
// its field.
func (in Input) Validate() []FieldError {
	var errs []FieldError
	switch n := utf8.RuneCountInString(in.Title); {
	case strings.TrimSpace(in.Title) == "":
		errs = append(errs, FieldError{"title", "is required"})
	case n > MaxTitleLen:
		errs = append(errs, FieldError{"title", fmt.Sprintf("must be at most %d characters", MaxTitleLen)})
	}
	if utf8.RuneCountInString(in.Body) > MaxBodyLen {
		errs = append(errs, FieldError{"body", fmt.Sprintf("must be at most %d characters", MaxBodyLen)})
	}
	for _, f := range []struct {
		name, text string
		allow      func(rune) bool
	}{{"title", in.Title, nil}, {"body", in.Body, bodyWhitespace}} {
		if !utf8.ValidString(f.text) {
			errs = append(errs, FieldError{f.name, invalidUTF8})
		} else if msg := controlIn(f.text, f.allow); msg != "" {
			errs = append(errs, FieldError{f.name, msg})
		}
	}
	return errs
}

// invalidUTF8 is the message for a field whose text is not valid Unicode.
const invalidUTF8 = "must be valid UTF-8 text (found an invalid byte sequence or an unpaired surrogate escape)"

// Page is one page of a listing. NextCursor is empty on the last page.
type Page struct {
	Items      []Note `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// Errors a Store returns; the HTTP layer maps them to 404 and 412.
var (
	ErrNotFound        = errors.New("note not found")
	ErrVersionMismatch = errors.New("note version mismatch")
)

// AnyVersion passed as the expected version skips the optimistic-concurrency check.
const AnyVersion int64 = 0

// Store persists notes. Implementations must be safe for concurrent use.
//
//go:generate go tool mockgen -typed -destination=mock_store_test.go -package=notes_test . Store
type Store interface {
	// Create assigns ID, Version (1) and timestamps, and stores the note.
	Create(ctx context.Context, in Input) (Note, error)
	// Get returns ErrNotFound when no note has that id.
	Get(ctx context.Context, id string) (Note, error)
	// List returns up to limit notes in creation order, starting after the
	// note whose id is cursor (from the beginning when cursor is empty).
	List(ctx context.Context, cursor string, limit int) (Page, error)
	// Update replaces title and body when the stored version equals want
	// (or want is AnyVersion); it returns ErrVersionMismatch otherwise,
	// and ErrNotFound when the note does not exist.
	Update(ctx context.Context, id string, in Input, want int64) (Note, error)
	// Delete removes the note under the same version rule as Update.
	Delete(ctx context.Context, id string, want int64) error
}

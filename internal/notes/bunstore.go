package notes

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// BunStore is the Store on a SQL database through bun. The schema comes from
// the notes migrations; the same queries run on SQLite and PostgreSQL.
type BunStore struct {
	db *bun.DB
}

var _ Store = (*BunStore)(nil)

// NewBunStore returns a Store using db, which must be migrated.
func NewBunStore(db *bun.DB) *BunStore {
	return &BunStore{db: db}
}

// noteRow is the notes table as bun sees it; Note stays free of storage tags.
type noteRow struct {
	bun.BaseModel `bun:"table:notes,alias:n"`

	ID        string    `bun:"id,pk"`
	Title     string    `bun:"title,notnull"`
	Body      string    `bun:"body,notnull"`
	Version   int64     `bun:"version,notnull"`
	CreatedAt time.Time `bun:"created_at,notnull"`
	UpdatedAt time.Time `bun:"updated_at,notnull"`
}

func (r *noteRow) note() Note {
	// Drivers return times in the local or a fixed zone; callers get UTC
	// whichever database answered.
	return Note{
		ID:        r.ID,
		Title:     r.Title,
		Body:      r.Body,
		Version:   r.Version,
		CreatedAt: r.CreatedAt.UTC(),
		UpdatedAt: r.UpdatedAt.UTC(),
	}
}

// now is the timestamp to store: UTC, at PostgreSQL's microsecond precision,
// so what Create returns equals what a later Get reads back.
func now() time.Time {
	return time.Now().UTC().Truncate(time.Microsecond)
}

// Create stores a new note with version 1.
func (s *BunStore) Create(ctx context.Context, in Input) (Note, error) {
	// Version 7 UUIDs start with a millisecond timestamp (and this library
	// keeps them increasing within the process), so ordering by id is
	// creation order and List can page by id alone.
	id, err := uuid.NewV7()
	if err != nil {
		return Note{}, fmt.Errorf("create note: new id: %w", err)
	}
	t := now()
	row := noteRow{ID: id.String(), Title: in.Title, Body: in.Body, Version: 1, CreatedAt: t, UpdatedAt: t}
	if _, err := s.db.NewInsert().Model(&row).Exec(ctx); err != nil {
		return Note{}, fmt.Errorf("create note: %w", err)
	}
	return row.note(), nil
}

// Get returns the note with id, or an error wrapping ErrNotFound.
func (s *BunStore) Get(ctx context.Context, id string) (Note, error) {
	var row noteRow
	err := s.db.NewSelect().Model(&row).Where("id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return Note{}, fmt.Errorf("get note %q: %w: %w", id, ErrNotFound, err)
	}
	if err != nil {
		return Note{}, fmt.Errorf("get note %q: %w", id, err)
	}
	return row.note(), nil
}

// List returns up to limit notes after cursor in id (creation) order. The
// cursor is only compared with ids, so an unknown or malformed one just means
// "start after that string".
func (s *BunStore) List(ctx context.Context, cursor string, limit int) (Page, error) {
	if limit < 1 {
		return Page{}, fmt.Errorf("list notes: limit must be positive, got %d", limit)
	}
	// Keyset pagination: unlike OFFSET it costs the same on every page and
	// neither skips nor repeats notes when others are created or deleted
	// meanwhile. One extra row tells whether another page exists.
	var rows []noteRow
	err := s.db.NewSelect().Model(&rows).
		Where("id > ?", cursor). // every id sorts after "", the first page's cursor
		OrderExpr("id ASC").
		Limit(int64(limit) + 1).
		Scan(ctx)
	if err != nil {
		return Page{}, fmt.Errorf("list notes: %w", err)
	}

	page := Page{Items: make([]Note, 0, min(len(rows), limit))}
	if len(rows) > limit {
		rows = rows[:limit]
		page.NextCursor = rows[limit-1].ID
	}
	for i := range rows {
		page.Items = append(page.Items, rows[i].note())
	}
	return page, nil
}

// Update replaces the title and body and bumps the version, if the stored
// version is want (or want is AnyVersion).
func (s *BunStore) Update(ctx context.Context, id string, in Input, want int64) (Note, error) {
	// Check and write in one statement, so two clients holding the same
	// version cannot both succeed: the database serialises the two UPDATEs
	// and the second no longer matches version = want.
	var row noteRow
	q := s.db.NewUpdate().Model(&row).
		Set("title = ?", in.Title).
		Set("body = ?", in.Body).
		Set("updated_at = ?", now()).
		Set("version = version + 1").
		Where("id = ?", id).
		Returning("*")
	if want != AnyVersion {
		q = q.Where("version = ?", want)
	}
	res, err := q.Exec(ctx)
	if err != nil {
		return Note{}, fmt.Errorf("update note %q: %w", id, err)
	}
	if err := s.checkAffected(ctx, res, id); err != nil {
		return Note{}, fmt.Errorf("update note %q: %w", id, err)
	}
	return row.note(), nil
}

// Delete removes the note under the same version rule as Update.
func (s *BunStore) Delete(ctx context.Context, id string, want int64) error {
	q := s.db.NewDelete().Model((*noteRow)(nil)).Where("id = ?", id)
	if want != AnyVersion {
		q = q.Where("version = ?", want)
	}
	res, err := q.Exec(ctx)
	if err != nil {
		return fmt.Errorf("delete note %q: %w", id, err)
	}
	if err := s.checkAffected(ctx, res, id); err != nil {
		return fmt.Errorf("delete note %q: %w", id, err)
	}
	return nil
}

// checkAffected explains a conditional write that touched no row: either the
// note does not exist or its version moved on.
func (s *BunStore) checkAffected(ctx context.Context, res sql.Result, id string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	exists, err := s.db.NewSelect().Model((*noteRow)(nil)).Where("id = ?", id).Exists(ctx)
	if err != nil {
		return fmt.Errorf("check note exists: %w", err)
	}
	if exists {
		return ErrVersionMismatch
	}
	return ErrNotFound
}

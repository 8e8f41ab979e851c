package notes_test

import (
	"io/fs"
	"path/filepath"
	"slices"
	"testing"
	"testing/fstest"
	"time"

	"github.com/uptrace/bun/migrate"

	"github.com/prodready/service/internal/database"
	"github.com/prodready/service/internal/notes"
	"github.com/prodready/service/internal/servicetest"
)

// TestMigrations_DatabaseMigratedByAnOlderBuild: a database migrated when
// the notes migration lived in the service's one shared folder (one set,
// one group) is current for the build where notes owns its set: nothing is
// applied again, nothing is pending, and a note can be written.
func TestMigrations_DatabaseMigratedByAnOlderBuild(t *testing.T) {
	wantNames := []string{"20261125000001_create_notes", "20261125000002_create_backups", "20261202000001_add_backups_method"}
	for _, tt := range []struct {
		name string
		open func(t *testing.T) database.Options
	}{
		{"sqlite", func(t *testing.T) database.Options {
			return database.Options{SQLitePath: filepath.Join(t.TempDir(), "notes.db"), BusyTimeout: 5 * time.Second}
		}},
		{"postgres", func(t *testing.T) database.Options {
			return database.Options{URL: servicetest.PostgresURL(t), MaxOpenConns: 4}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			db, err := database.Open(ctx, tt.open(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })

			// The older build: every migration in one folder, one migrator.
			old := migrate.NewMigrations()
			if err := old.Discover(sharedFolder(t, database.CoreMigrations(), notes.Migrations())); err != nil {
				t.Fatal(err)
			}
			m := migrate.NewMigrator(db, old, migrate.WithMarkAppliedOnSuccess(true))
			if err := m.Init(ctx); err != nil {
				t.Fatal(err)
			}
			group, err := m.Migrate(ctx)
			if err != nil || len(group.Migrations) != len(wantNames) {
				t.Fatalf("older build's migrate: %v, %v; want the notes and backups migrations %v", group, err, wantNames)
			}

			applied, err := database.Migrate(ctx, db, nil, notes.Migrations())
			if err != nil || len(applied) != 0 {
				t.Errorf("this build's migrate applied %v, %v; want nothing: the names are recognised", applied, err)
			}
			st, err := database.Status(ctx, db, notes.Migrations())
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range st {
				names = append(names, s.Name)
				if !s.Applied || s.GroupID != 1 {
					t.Errorf("%s: applied %v in group %d; want applied in the older build's group 1", s.Name, s.Applied, s.GroupID)
				}
			}
			if !slices.Equal(names, wantNames) {
				t.Errorf("status lists %v; want %v", names, wantNames)
			}
			if _, err := notes.NewBunStore(db).Create(ctx, notes.Input{Title: "after the upgrade"}); err != nil {
				t.Errorf("create after the upgrade: %v", err)
			}
		})
	}
}

// sharedFolder puts the .sql files of sets in one folder, as the service
// kept them before each resource owned its own.
func sharedFolder(t *testing.T, sets ...fs.FS) fstest.MapFS {
	t.Helper()
	out := fstest.MapFS{}
	for _, set := range sets {
		files, err := fs.Glob(set, "migrations/*.sql")
		if err != nil || len(files) == 0 {
			t.Fatalf("no migrations in a set: %v", err)
		}
		for _, f := range files {
			data, err := fs.ReadFile(set, f)
			if err != nil {
				t.Fatal(err)
			}
			out["migrations/"+filepath.Base(f)] = &fstest.MapFile{Data: data}
		}
	}
	return out
}

package database

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/uptrace/bun"
)

// hasTable is tableExists (migrate.go), which looks through the search
// path: on PostgreSQL only the test's own schema.
func hasTable(ctx context.Context, t *testing.T, db *bun.DB, name string) bool {
	t.Helper()
	ok, err := tableExists(ctx, db, name)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func sqlSet(files map[string]string) fstest.MapFS {
	set := fstest.MapFS{}
	for name, sql := range files {
		set["migrations/"+name] = &fstest.MapFile{Data: []byte(sql)}
	}
	return set
}

// TestMigrate_SQLFilesRunAsBunWouldRunThem: the service reads its SQL
// migration files itself (sqlfiles.go), in bun's format, so each rule of that
// format is checked here on both databases: what a file applies, and what a
// failing one leaves behind.
func TestMigrate_SQLFilesRunAsBunWouldRunThem(t *testing.T) {
	tests := []struct {
		name        string
		files       map[string]string
		wantErr     string   // "" when Migrate succeeds
		wantTables  []string // present afterwards
		wantMissing []string // absent afterwards
	}{
		{
			name: "--bun:split runs each part as its own statement",
			files: map[string]string{
				"30000000000001_two.tx.up.sql":   "CREATE TABLE split_a (x INTEGER);\n--bun:split\n\nCREATE TABLE split_b (x INTEGER);\n",
				"30000000000001_two.tx.down.sql": "DROP TABLE split_b;\n--bun:split\nDROP TABLE split_a;\n",
			},
			wantTables: []string{"split_a", "split_b"},
		},
		{
			name: "a .tx file that fails leaves nothing of itself",
			files: map[string]string{
				"30000000000002_half.tx.up.sql":   "CREATE TABLE tx_first (x INTEGER);\n--bun:split\nCREATE TABLE tx_first (x INTEGER);\n",
				"30000000000002_half.tx.down.sql": "DROP TABLE tx_first;\n",
			},
			wantErr:     "migrate: ",
			wantMissing: []string{"tx_first"},
		},
		{
			name: "a file without .tx runs statement by statement: what ran before the failure stays",
			files: map[string]string{
				"30000000000003_half.up.sql":   "CREATE TABLE notx_first (x INTEGER);\n--bun:split\nCREATE TABLE notx_first (x INTEGER);\n",
				"30000000000003_half.down.sql": "DROP TABLE notx_first;\n",
			},
			wantErr:    "migrate: ",
			wantTables: []string{"notx_first"},
		},
		{
			name: "an unknown directive is refused, naming the file",
			files: map[string]string{
				"30000000000004_bad.tx.up.sql":   "--bun:splt\nCREATE TABLE directive_t (x INTEGER);\n",
				"30000000000004_bad.tx.down.sql": "DROP TABLE directive_t;\n",
			},
			wantErr:     "30000000000004_bad.tx.up.sql: unknown directive --bun:splt",
			wantMissing: []string{"directive_t"},
		},
		{
			name:        "a file name without a version is refused before anything runs",
			files:       map[string]string{"create_things.tx.up.sql": "CREATE TABLE things (x INTEGER);\n"},
			wantErr:     "migrations/create_things.tx.up.sql: the name is not <version>_<name>",
			wantMissing: []string{"things", "notes"},
		},
		{
			name:        "a name with capitals is refused, as bun refuses it",
			files:       map[string]string{"30000000000005_Things.tx.up.sql": "CREATE TABLE things (x INTEGER);\n"},
			wantErr:     "the name is not <version>_<name>",
			wantMissing: []string{"things"},
		},
		{
			name: "two up files of one version are refused",
			files: map[string]string{
				"30000000000006_both.tx.up.sql": "CREATE TABLE both_tx (x INTEGER);\n",
				"30000000000006_both.up.sql":    "CREATE TABLE both_notx (x INTEGER);\n",
			},
			wantErr:     "version 30000000000006 has another up file",
			wantMissing: []string{"both_tx", "both_notx"},
		},
		{
			name: "a version used by another set is refused: the sets share one record",
			files: map[string]string{
				createNotes + ".tx.up.sql":   "CREATE TABLE twice (x INTEGER);\n",
				createNotes + ".tx.down.sql": "DROP TABLE twice;\n",
			},
			wantErr:     "version 20261125000001 is also migrations/" + createNotes,
			wantMissing: []string{"twice", "notes"},
		},
	}
	eachDialect(t, func(t *testing.T, open func(t *testing.T) *bun.DB) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx := t.Context()
				db := open(t)
				_, err := Migrate(ctx, db, nil, resourceSet, sqlSet(tt.files))
				if tt.wantErr == "" && err != nil {
					t.Fatalf("Migrate: %v", err)
				}
				if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
					t.Fatalf("Migrate error = %v, want one containing %q", err, tt.wantErr)
				}
				for _, name := range tt.wantTables {
					if !hasTable(ctx, t, db, name) {
						t.Errorf("table %s is missing", name)
					}
				}
				for _, name := range tt.wantMissing {
					if hasTable(ctx, t, db, name) {
						t.Errorf("table %s is there", name)
					}
				}
				if tt.wantErr != "" {
					return
				}
				// And the down files undo it.
				for {
					rolled, err := Rollback(ctx, db, resourceSet, sqlSet(tt.files))
					if err != nil {
						t.Fatalf("Rollback: %v", err)
					}
					if len(rolled) == 0 {
						break
					}
				}
				for _, name := range tt.wantTables {
					if hasTable(ctx, t, db, name) {
						t.Errorf("table %s is still there after Rollback", name)
					}
				}
			})
		}
	})
}

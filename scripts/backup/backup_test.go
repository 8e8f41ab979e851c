package backup_test

import (
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/prodready/service/internal/backup"
	"github.com/prodready/service/internal/database"
	"github.com/prodready/service/internal/health"
)

const notesWritten = 40

func migrate(t *testing.T, db *bun.DB) {
	t.Helper()
	if _, err := database.Migrate(t.Context(), db, nil); err != nil {
		t.Fatal(err)
	}
}

// ageCheck runs the status route's check the way the service does.
func ageCheck(t *testing.T, db *bun.DB) health.Result {
	t.Helper()
	return backup.AgeCheck(db, 26*time.Hour, 50*time.Hour, time.Now).Run(t.Context())
}

// The evidence, on PostgreSQL: notes written through the API, backed
// up (encrypted, uploaded, verified, recorded), the database dropped,
// restored by name, and every table identical, row for row.
func TestPostgreSQL_BackupDropRestore(t *testing.T) {
	t.Parallel()
	dbURL, name, admin := newPostgresDatabase(t)
	identity, recipient := ageKey(t)
	db := openDB(t, database.Options{URL: dbURL})
	migrate(t, db)
	srv := api(t, db)
	ids := writeNotes(t, srv, notesWritten)
	before := checksums(t, db)
	if r := ageCheck(t, db); r.Status != health.Fail || r.Output != "no verified backup recorded" {
		t.Fatalf("backup:age before any backup = %s %q; want fail, none recorded", r.Status, r.Output)
	}

	dir, uploaded := t.TempDir(), t.TempDir()
	env := map[string]string{
		"DATABASE_URL":          dbURL,
		"BACKUP_DIR":            dir,
		"BACKUP_AGE_RECIPIENTS": recipient,
		"BACKUP_AGE_IDENTITY":   identity,
		"BACKUP_UPLOAD_CMD":     `cp -- "$@" ` + uploaded + `/`,
	}
	r := run(t, env, "backup.sh").mustSucceed(t)
	for _, want := range []string{"verified: restored into a scratch copy", "checked: BACKUP_AGE_IDENTITY decrypts", "upload: done", "recorded", "backup complete"} {
		if !strings.Contains(r.stdout, want) || !strings.Contains(r.syslog, want) {
			t.Errorf("stdout and syslog should say %q\nstdout:\n%s\nsyslog:\n%s", want, r.stdout, r.syslog)
		}
	}
	manifestPath, m := onlyBackup(t, dir)
	if m.Kind != "postgres" || !m.Encrypted || !strings.HasSuffix(m.File, ".pgdump.age") ||
		m.SchemaVersion != latestMigration(t, db) || m.RowCounts["public.notes"] != notesWritten {
		t.Errorf("manifest %+v; want an encrypted postgres dump of %d notes at schema %s", m, notesWritten, latestMigration(t, db))
	}
	for _, f := range []string{m.File, filepath.Base(manifestPath)} {
		if _, err := os.Stat(filepath.Join(uploaded, f)); err != nil {
			t.Errorf("upload hook did not receive %s: %v", f, err)
		}
	}
	if r := ageCheck(t, db); r.Status != health.Pass {
		t.Errorf("backup:age after a verified backup = %s %q; want pass", r.Status, r.Output)
	}

	// The disaster: the database is gone.
	srv.Close()
	_ = db.Close()
	if _, err := admin.ExecContext(t.Context(), "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}

	r = run(t, env, "restore.sh", "--target", name, "--identity", identity, filepath.Join(dir, m.File)).mustSucceed(t)
	if !strings.Contains(r.stdout, "restored "+m.Name+" into postgres database "+name) {
		t.Errorf("restore stdout:\n%s", r.stdout)
	}
	db = openDB(t, database.Options{URL: dbURL})
	sameChecksums(t, "after restore", before, checksums(t, db))
	if got := listNotes(t, api(t, db)); !slices.Equal(got, ids) {
		t.Errorf("the API lists %d notes after the restore; want the %d written before", len(got), len(ids))
	}
	now := checksums(t, db)

	// verify.sh on the stored copy: a restore drill that prints its time and
	// records the backup in the (restored) database.
	r = run(t, env, "verify.sh", "--identity", identity, manifestPath).mustSucceed(t)
	if !strings.Contains(r.stdout, "restore time: ") {
		t.Errorf("verify.sh stdout lacks the restore time:\n%s", r.stdout)
	}
	if r := ageCheck(t, db); r.Status != health.Pass {
		t.Errorf("backup:age after verify.sh recorded the backup = %s %q; want pass", r.Status, r.Output)
	}
	now["backups"] = checksums(t, db)["backups"]

	refusals(t, env, manifestPath, m, identity, name, func(t *testing.T) {
		t.Helper()
		sameChecksums(t, "target after a refused restore", now, checksums(t, db))
		// Temporary and scratch databases are dropped on every path.
		var leftovers string
		if err := admin.QueryRowContext(t.Context(),
			"SELECT coalesce(string_agg(datname, ', '), '') FROM pg_database WHERE datname LIKE 'notes\\_verify\\_%' OR datname LIKE $1",
			name+`\_restoring\_%`).Scan(&leftovers); err != nil {
			t.Fatal(err)
		}
		if leftovers != "" {
			t.Errorf("databases left behind: %s", leftovers)
		}
	})
}

// The same evidence on the SQLite default: a live database (the service's
// pool stays open, in WAL mode) backed up, deleted with its WAL, restored.
func TestSQLite_BackupDeleteRestore(t *testing.T) {
	t.Parallel()
	needTools(t, "sqlite3")
	identity, recipient := ageKey(t)
	path := filepath.Join(t.TempDir(), "data", "notes.db")
	db := openDB(t, database.Options{SQLitePath: path, BusyTimeout: 5 * time.Second})
	migrate(t, db)
	srv := api(t, db)
	ids := writeNotes(t, srv, notesWritten)
	before := checksums(t, db)

	dir := t.TempDir()
	env := map[string]string{
		"APP_DATABASE_SQLITE_PATH": path,
		"BACKUP_DIR":               dir,
		"BACKUP_AGE_RECIPIENTS":    recipient,
	}
	r := run(t, env, "backup.sh").mustSucceed(t)
	if !strings.Contains(r.stdout, "verified: restored into a scratch copy") {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	manifestPath, m := onlyBackup(t, dir)
	if m.Kind != "sqlite" || !m.Encrypted || !strings.HasSuffix(m.File, ".sqlite.age") ||
		m.SchemaVersion != latestMigration(t, db) || m.RowCounts["notes"] != notesWritten {
		t.Errorf("manifest %+v; want an encrypted sqlite copy of %d notes at schema %s", m, notesWritten, latestMigration(t, db))
	}
	if r := ageCheck(t, db); r.Status != health.Pass {
		t.Errorf("backup:age after a verified backup = %s %q; want pass", r.Status, r.Output)
	}

	// The disaster: the file and its WAL are gone.
	srv.Close()
	_ = db.Close()
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}

	r = run(t, env, "restore.sh", "--target", path, "--identity", identity, filepath.Join(dir, m.File)).mustSucceed(t)
	if !strings.Contains(r.stdout, "restored "+m.Name+" into sqlite file "+path) {
		t.Errorf("restore stdout:\n%s", r.stdout)
	}
	db = openDB(t, database.Options{SQLitePath: path, BusyTimeout: 5 * time.Second})
	sameChecksums(t, "after restore", before, checksums(t, db))
	if got := listNotes(t, api(t, db)); !slices.Equal(got, ids) {
		t.Errorf("the API lists %d notes after the restore; want the %d written before", len(got), len(ids))
	}

	r = run(t, env, "verify.sh", "--identity", identity, filepath.Join(dir, m.File)).mustSucceed(t)
	if !strings.Contains(r.stdout, "restore time: ") {
		t.Errorf("verify.sh stdout lacks the restore time:\n%s", r.stdout)
	}
	now := checksums(t, db)
	refusals(t, env, manifestPath, m, identity, path, func(t *testing.T) {
		t.Helper()
		sameChecksums(t, "target after a refused restore", now, checksums(t, db))
		if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*restoring*")); len(leftovers) > 0 {
			t.Errorf("temporary files left beside the target: %v", leftovers)
		}
	})

	// With --force a non-empty target is replaced, and the old file is kept aside.
	run(t, env, "restore.sh", "--force", "--target", path, "--identity", identity, manifestPath).mustSucceed(t)
	if aside, _ := filepath.Glob(path + ".pre-restore-*"); len(aside) == 0 {
		t.Error("--force left no copy of the replaced database")
	}
}

// refusals damages copies of a good backup in every way the issue names and
// checks restore.sh refuses each with one clear line and a non-zero exit,
// leaving the target as it was (untouched checks that).
func refusals(t *testing.T, env map[string]string, manifestPath string, m manifest, identity, target string, untouched func(t *testing.T)) {
	otherKey, _ := ageKey(t)
	plainName := strings.TrimSuffix(m.File, ".age")
	tests := []struct {
		name     string
		damage   func(t *testing.T, file, manifest string) string // returns the path to restore
		identity string
		force    bool
		want     string
	}{
		{
			name:  "non-empty target without --force",
			force: false, identity: identity, want: "is not empty",
			damage: func(_ *testing.T, file, _ string) string { return file },
		},
		{
			name:  "truncated file",
			force: true, identity: identity, want: "truncated or incomplete copy",
			damage: func(t *testing.T, file, _ string) string {
				b := read(t, file)
				write(t, file, b[:len(b)/2])
				return file
			},
		},
		{
			name:  "flipped byte",
			force: true, identity: identity, want: "corrupted; refusing to use it",
			damage: func(t *testing.T, file, _ string) string {
				b := read(t, file)
				b[len(b)/2] ^= 0x01
				write(t, file, b)
				return file
			},
		},
		{
			name:  "wrong checksum in the manifest",
			force: true, identity: identity, want: "does not match its manifest",
			damage: func(t *testing.T, file, manifest string) string {
				editManifest(t, manifest, "sha256", `"`+strings.Repeat("0", 64)+`"`)
				return file
			},
		},
		{
			name:  "wrong age key",
			force: true, identity: otherKey, want: "does not match this backup's recipients (wrong key)",
			damage: func(_ *testing.T, file, _ string) string { return file },
		},
		{
			name:  "no age key",
			force: true, identity: "", want: "is encrypted: pass --identity",
			damage: func(_ *testing.T, file, _ string) string { return file },
		},
		{
			name:  "truncated and re-checksummed, so only decryption can tell",
			force: true, identity: identity, want: "decrypt " + m.File,
			damage: func(t *testing.T, file, manifest string) string {
				b := read(t, file)
				b = b[:len(b)-100]
				write(t, file, b)
				editManifest(t, manifest, "sha256", `"`+sha256Hex(b)+`"`)
				editManifest(t, manifest, "size_bytes", strconv.Itoa(len(b)))
				return file
			},
		},
		{
			// Unencrypted, truncated and re-checksummed: every check before the
			// restore passes, the restore into the temporary copy fails.
			name:  "plaintext dump truncated and re-checksummed",
			force: true, identity: "", want: "",
			damage: func(t *testing.T, file, manifest string) string {
				plain := decryptTo(t, file, identity)
				plain = plain[:len(plain)*3/4]
				out := filepath.Join(filepath.Dir(file), plainName)
				write(t, out, plain)
				_ = os.Remove(file)
				editManifest(t, manifest, "file", `"`+plainName+`"`)
				editManifest(t, manifest, "encrypted", "false")
				editManifest(t, manifest, "sha256", `"`+sha256Hex(plain)+`"`)
				editManifest(t, manifest, "plaintext_sha256", `"`+sha256Hex(plain)+`"`)
				editManifest(t, manifest, "size_bytes", strconv.Itoa(len(plain)))
				return out
			},
		},
		{
			// A sound file whose manifest lies about the data: the restored
			// temporary copy does not match, so it is never swapped in.
			name:  "row counts differ from the manifest",
			force: true, identity: identity, want: "differ from the manifest's",
			damage: func(t *testing.T, file, manifest string) string {
				editManifest(t, manifest, "row_counts", `{"notes": 1}`)
				return file
			},
		},
		{
			name:  "manifest missing",
			force: true, identity: identity, want: "no manifest",
			damage: func(t *testing.T, file, manifest string) string {
				if err := os.Remove(manifest); err != nil {
					t.Fatal(err)
				}
				return file
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, file, manifestCopy := copyBackup(t, manifestPath, m)
			path := tt.damage(t, file, manifestCopy)
			args := []string{"--target", target}
			if tt.force {
				args = append(args, "--force")
			}
			e := maps.Clone(env)
			delete(e, "BACKUP_AGE_IDENTITY")
			if tt.identity != "" {
				args = append(args, "--identity", tt.identity)
			}
			line := run(t, e, "restore.sh", append(args, path)...).failureLine(t)
			t.Log(line)
			if !strings.Contains(line, tt.want) {
				t.Errorf("failure line %q; want it to say %q", line, tt.want)
			}
			untouched(t)
		})
	}
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func decryptTo(t *testing.T, file, identity string) []byte {
	t.Helper()
	out, err := exec.Command("age", "--decrypt", "-i", identity, file).Output() //nolint:gosec // test tool
	if err != nil {
		t.Fatalf("age --decrypt: %v", err)
	}
	return out
}

// A forced restore drops the target, then renames the checked temporary
// database into its place. If the rename fails, the temporary database is by
// then the only copy of the data: it must be kept, and the failure line must
// name it, not drop it in the clean-up.
func TestPostgreSQL_ForcedRestoreKeepsTheRestoredCopyWhenTheSwapFails(t *testing.T) {
	t.Parallel()
	dbURL, name, admin := newPostgresDatabase(t)
	db := openDB(t, database.Options{URL: dbURL})
	migrate(t, db)
	srv := api(t, db)
	writeNotes(t, srv, 5)
	srv.Close()
	_ = db.Close()

	dir := t.TempDir()
	env := map[string]string{"DATABASE_URL": dbURL, "BACKUP_DIR": dir}
	run(t, env, "backup.sh").mustSucceed(t)
	manifestPath, _ := onlyBackup(t, dir)

	// A psql whose ALTER DATABASE ... RENAME fails, as it does when a session
	// is connected to the database being renamed.
	realPsql, err := exec.LookPath("psql")
	if err != nil {
		t.Fatal(err)
	}
	shim := t.TempDir()
	script := "#!/usr/bin/env bash\nsql=$(cat)\ncase $sql in *'RENAME TO'*)\n" +
		"  echo 'ERROR:  database is being accessed by other users' >&2; exit 1 ;;\nesac\n" +
		"exec " + strconv.Quote(realPsql) + " \"$@\" <<<\"$sql\"\n"
	if err := os.WriteFile(filepath.Join(shim, "psql"), []byte(script), 0o755); err != nil { //nolint:gosec // a test executable
		t.Fatal(err)
	}
	env["PATH"] = shim + string(os.PathListSeparator) + os.Getenv("PATH")
	env["BACKUP_SYSLOG"] = "0"
	line := run(t, env, "restore.sh", "--force", "--target", name, manifestPath).failureLine(t)

	var kept string
	if err := admin.QueryRowContext(t.Context(),
		"SELECT coalesce(string_agg(datname, ', '), '') FROM pg_database WHERE datname LIKE $1", name+`\_restoring\_%`).Scan(&kept); err != nil {
		t.Fatal(err)
	}
	if kept == "" {
		t.Fatalf("the target was dropped and the restored copy too: nothing left (%s)", line)
	}
	t.Cleanup(func() {
		_, _ = admin.ExecContext(context.Background(), `DROP DATABASE IF EXISTS "`+kept+`" WITH (FORCE)`)
	})
	if !strings.Contains(line, "kept as database "+kept) {
		t.Errorf("failure line %q does not name the kept copy %s", line, kept)
	}
	copyDB := openDB(t, database.Options{URL: strings.Replace(dbURL, "/"+name, "/"+kept, 1)})
	if n, err := copyDB.NewSelect().Table("notes").Count(t.Context()); err != nil || n != 5 {
		t.Errorf("the kept copy has %d notes (%v); want the 5 backed up", n, err)
	}
}

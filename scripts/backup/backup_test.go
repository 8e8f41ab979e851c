package backup_test

import (
	"context"
	"database/sql"
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
	"github.com/prodready/service/internal/resources"
)

const notesWritten = 40

func migrate(t *testing.T, db *bun.DB) {
	t.Helper()
	if _, err := database.Migrate(t.Context(), db, nil, resources.All().Migrations()...); err != nil {
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
		// its own scratch names: other tests run backups in parallel
		"BACKUP_SCRATCH_PREFIX": name + "_drill",
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
			"SELECT coalesce(string_agg(datname, ', '), '') FROM pg_database WHERE datname LIKE $1 OR datname LIKE $2",
			name+`\_drill\_%`, name+`\_restoring\_%`).Scan(&leftovers); err != nil {
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

// A forced restore keeps the database it replaces, as it keeps a SQLite file:
// renamed aside to <name>_pre_restore_<UTC time>, with its data, and named in
// the output with how to drop it. A session left connected to the target (the
// service's pool) does not stop the swap.
func TestPostgreSQL_ForcedRestoreKeepsThePreviousDatabase(t *testing.T) {
	t.Parallel()
	dbURL, name, admin := newPostgresDatabase(t)
	db := openDB(t, database.Options{URL: dbURL})
	migrate(t, db)
	srv := api(t, db)
	writeNotes(t, srv, 5)

	backedUp := checksums(t, db) // the dump's content: backup.sh records itself afterwards
	dir := t.TempDir()
	env := map[string]string{"DATABASE_URL": dbURL, "BACKUP_DIR": dir, "BACKUP_SYSLOG": "0"}
	run(t, env, "backup.sh").mustSucceed(t)
	manifestPath, _ := onlyBackup(t, dir)
	writeNotes(t, srv, 3) // written after the backup: only the kept copy has them
	previous := checksums(t, db)
	srv.Close()
	session, err := db.Conn(t.Context()) // a session left open on the target
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = session.Close() })
	dropPreRestore(t, admin, name)

	before := time.Now().UTC().Truncate(time.Second)
	r := run(t, env, "restore.sh", "--force", "--target", name, manifestPath).mustSucceed(t)
	after := time.Now().UTC()
	asides := preRestore(t.Context(), t, admin, name)
	if len(asides) != 1 {
		t.Fatalf("databases %s_pre_restore_*: %v; want one\nstdout:\n%s", name, asides, r.stdout)
	}
	aside := asides[0]
	stamp, ok := strings.CutPrefix(aside, name+"_pre_restore_")
	at, err := time.Parse("20060102150405", stamp)
	if !ok || err != nil || at.Before(before) || at.After(after) {
		t.Errorf("kept copy %s; want %s_pre_restore_<UTC YYYYmmddHHMMSS of the restore>", aside, name)
	}
	if want := "kept as " + aside + "; drop it once satisfied with the restore: dropdb " + aside; !strings.Contains(r.stdout, want) {
		t.Errorf("stdout does not say %q:\n%s", want, r.stdout)
	}
	sameChecksums(t, "the kept copy", previous, checksums(t, openDB(t, database.Options{URL: withDB(dbURL, name, aside)})))
	sameChecksums(t, "the target after the restore", backedUp, checksums(t, openDB(t, database.Options{URL: dbURL})))

	// A target name as long as PostgreSQL allows: the kept copy's name is cut
	// to fit in 63 bytes, and the target itself keeps its full name.
	long := name + "_" + strings.Repeat("x", 63-len(name)-1)
	if _, err := admin.ExecContext(t.Context(), "CREATE DATABASE "+long); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+long+" WITH (FORCE)")
	})
	dropPreRestore(t, admin, long[:36])
	r = run(t, env, "restore.sh", "--force", "--target", long, manifestPath).mustSucceed(t)
	asides = preRestore(t.Context(), t, admin, long[:36])
	if len(asides) != 1 || len(asides[0]) != 63 || !strings.Contains(r.stdout, "dropdb "+asides[0]) {
		t.Errorf("kept copies of %s: %v; want one of 63 bytes, named in stdout:\n%s", long, asides, r.stdout)
	}
	sameChecksums(t, "the long-named target after the restore", backedUp, checksums(t, openDB(t, database.Options{URL: withDB(dbURL, name, long)})))
}

// preRestore lists the databases kept aside by forced restores of name.
func preRestore(ctx context.Context, t *testing.T, admin *sql.DB, name string) []string {
	t.Helper()
	rows, err := admin.QueryContext(ctx, "SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY datname",
		strings.ReplaceAll(name, "_", `\_`)+`\_pre\_restore\_%`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// dropPreRestore drops, when the test ends, the copies forced restores of
// name kept: restore.sh never drops them itself.
func dropPreRestore(t *testing.T, admin *sql.DB, name string) {
	t.Helper()
	t.Cleanup(func() {
		for _, n := range preRestore(context.Background(), t, admin, name) {
			if _, err := admin.ExecContext(context.Background(), `DROP DATABASE IF EXISTS "`+n+`" WITH (FORCE)`); err != nil {
				t.Errorf("drop database %s: %v", n, err)
			}
		}
	})
}

// withDB is dbURL (whose database is name) pointed at database other.
func withDB(dbURL, name, other string) string {
	return strings.Replace(dbURL, "/"+name, "/"+other, 1)
}

// A forced restore renames the target aside, then renames the checked
// temporary database into its place. If either rename fails, the target name
// must still point at a complete database: the old one, untouched or moved
// back. The temporary database is kept, named in the failure line, not
// dropped in the clean-up, so the restore can be finished by hand.
func TestPostgreSQL_ForcedRestoreKeepsTheRestoredCopyWhenTheSwapFails(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		failing string // a case pattern: the SQL whose psql run fails
		want    string
	}{
		{
			name:    "moving the target aside fails",
			failing: `*'_pre_restore_'*`,
			want:    " is unchanged; the restored, checked copy is kept as database ",
		},
		{
			name:    "renaming the restored copy in fails",
			failing: `*'_restoring_'*'RENAME TO'*`,
			want:    " was moved back and is unchanged; the restored, checked copy is kept as database ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dbURL, name, admin := newPostgresDatabase(t)
			db := openDB(t, database.Options{URL: dbURL})
			migrate(t, db)
			srv := api(t, db)
			writeNotes(t, srv, 5)

			dir := t.TempDir()
			env := map[string]string{"DATABASE_URL": dbURL, "BACKUP_DIR": dir}
			run(t, env, "backup.sh").mustSucceed(t)
			manifestPath, _ := onlyBackup(t, dir)
			writeNotes(t, srv, 2) // the target now differs from the backup
			previous := checksums(t, db)
			srv.Close()
			_ = db.Close()
			dropPreRestore(t, admin, name)

			// A psql whose ALTER DATABASE ... RENAME fails, as it does when a
			// session is connected to the database being renamed.
			realPsql, err := exec.LookPath("psql")
			if err != nil {
				t.Fatal(err)
			}
			shim := t.TempDir()
			script := "#!/usr/bin/env bash\nsql=$(cat)\ncase $sql in " + tt.failing + ")\n" +
				"  echo 'ERROR:  database is being accessed by other users' >&2; exit 1 ;;\nesac\n" +
				"exec " + strconv.Quote(realPsql) + " \"$@\" <<<\"$sql\"\n"
			if err := os.WriteFile(filepath.Join(shim, "psql"), []byte(script), 0o755); err != nil { //nolint:gosec // a test executable
				t.Fatal(err)
			}
			env["PATH"] = shim + string(os.PathListSeparator) + os.Getenv("PATH")
			env["BACKUP_SYSLOG"] = "0"
			line := run(t, env, "restore.sh", "--force", "--target", name, manifestPath).failureLine(t)
			t.Log(line)

			var kept string
			if err := admin.QueryRowContext(t.Context(),
				"SELECT coalesce(string_agg(datname, ', '), '') FROM pg_database WHERE datname LIKE $1", name+`\_restoring\_%`).Scan(&kept); err != nil {
				t.Fatal(err)
			}
			if kept == "" {
				t.Fatalf("the restored copy was dropped (%s)", line)
			}
			t.Cleanup(func() {
				_, _ = admin.ExecContext(context.Background(), `DROP DATABASE IF EXISTS "`+kept+`" WITH (FORCE)`)
			})
			if !strings.Contains(line, tt.want+kept) {
				t.Errorf("failure line %q; want it to say %q", line, tt.want+kept)
			}
			copyDB := openDB(t, database.Options{URL: withDB(dbURL, name, kept)})
			if n, err := copyDB.NewSelect().Table("notes").Count(t.Context()); err != nil || n != 5 {
				t.Errorf("the kept copy has %d notes (%v); want the 5 backed up", n, err)
			}
			sameChecksums(t, "the target after the failed swap", previous, checksums(t, openDB(t, database.Options{URL: dbURL})))
			if asides := preRestore(t.Context(), t, admin, name); len(asides) != 0 {
				t.Errorf("databases left aside: %v; the target should have been moved back", asides)
			}
		})
	}
}

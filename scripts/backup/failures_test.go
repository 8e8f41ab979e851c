package backup_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prodready/service/internal/database"
	"github.com/prodready/service/internal/health"
)

// migratedSQLite makes a small SQLite database as the service leaves it.
func migratedSQLite(t *testing.T) string {
	t.Helper()
	needTools(t, "sqlite3")
	path := filepath.Join(t.TempDir(), "notes.db")
	db := openDB(t, database.Options{SQLitePath: path, BusyTimeout: 5 * time.Second})
	migrate(t, db)
	writeNotes(t, api(t, db), 3)
	_ = db.Close()
	return path
}

// Every way a backup run can fail ends with exit 1 and one line on stderr
// that says what went wrong, never the password.
func TestBackup_Failures(t *testing.T) {
	t.Parallel()
	needTools(t, "pg_dump", "psql", "sqlite3")
	sqlitePath := migratedSQLite(t)
	secretFile := filepath.Join(t.TempDir(), "database-url")
	if err := os.WriteFile(secretFile, []byte("postgres://notes:"+fakePassword+"@127.0.0.1:1/notes?sslmode=disable&connect_timeout=5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		env   map[string]string
		want  string
		tools []string // beyond the suite's: missing, the case skips loudly
	}{
		{
			name: "sqlite database missing",
			env:  map[string]string{"APP_DATABASE_SQLITE_PATH": filepath.Join(t.TempDir(), "nope.db")},
			want: "nope.db does not exist",
		},
		{
			name: "postgres unreachable, password in the URL",
			env:  map[string]string{"DATABASE_URL": "postgres://notes:" + fakePassword + "@127.0.0.1:1/notes?sslmode=disable&connect_timeout=5"},
			want: "open a snapshot of postgres database notes: ",
		},
		{
			name: "postgres unreachable, URL from DATABASE_URL_FILE",
			env:  map[string]string{"DATABASE_URL_FILE": secretFile},
			want: "open a snapshot of postgres database notes: ",
		},
		{
			name: "both DATABASE_URL and DATABASE_URL_FILE",
			env:  map[string]string{"DATABASE_URL": "postgres://h/db", "DATABASE_URL_FILE": secretFile},
			want: "both DATABASE_URL and DATABASE_URL_FILE are set",
		},
		{
			name: "unsupported scheme, never echoed",
			env:  map[string]string{"DATABASE_URL": "mysql://root:" + fakePassword + "@db/notes"},
			want: "unsupported scheme",
		},
		{
			name: "upload hook fails",
			env:  map[string]string{"APP_DATABASE_SQLITE_PATH": sqlitePath, "BACKUP_UPLOAD_CMD": "echo 'bucket says no' >&2; exit 3"},
			want: "upload hook (BACKUP_UPLOAD_CMD): bucket says no",
		},
		{
			name:  "recipient is not an age key",
			env:   map[string]string{"APP_DATABASE_SQLITE_PATH": sqlitePath, "BACKUP_AGE_RECIPIENTS": "not-a-key"},
			want:  "encrypt with age: ",
			tools: []string{"age"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			needTools(t, tt.tools...)
			tt.env["BACKUP_DIR"] = t.TempDir()
			line := run(t, tt.env, "backup.sh").failureLine(t)
			if !strings.Contains(line, tt.want) {
				t.Errorf("failure line %q; want it to say %q", line, tt.want)
			}
			if files, _ := filepath.Glob(filepath.Join(tt.env["BACKUP_DIR"], ".notes-api-backup.*")); len(files) > 0 {
				t.Errorf("work directory left behind: %v", files)
			}
		})
	}

	// A failed upload records nothing: the backup:age check must not be
	// fooled by a backup that never left the machine.
	db := openDB(t, database.Options{SQLitePath: sqlitePath})
	if r := ageCheck(t, db); r.Status != health.Fail {
		t.Errorf("backup:age after failed runs = %s %q; want fail", r.Status, r.Output)
	}
}

// Logs go to stdout and, through logger(1), to syslog; without a working
// logger, to stdout only, with a warning, and the backup still succeeds.
func TestBackup_Logging(t *testing.T) {
	t.Parallel()
	path := migratedSQLite(t)
	for _, mode := range []string{"", "fail", "absent"} {
		t.Run("logger "+map[string]string{"": "works", "fail": "fails", "absent": "absent"}[mode], func(t *testing.T) {
			env := map[string]string{"APP_DATABASE_SQLITE_PATH": path, "BACKUP_DIR": t.TempDir(), loggerMode: mode}
			r := run(t, env, "backup.sh").mustSucceed(t)
			switch mode {
			case "":
				if !strings.Contains(r.syslog, "-t notes-api-backup") || !strings.Contains(r.syslog, "backup complete") {
					t.Errorf("syslog got:\n%s", r.syslog)
				}
			case "fail":
				if !strings.Contains(r.stdout, "warning: syslog is unavailable (logger failed); logging to stdout only") {
					t.Errorf("stdout:\n%s", r.stdout)
				}
			case "absent":
				if !strings.Contains(r.stdout, "warning: logger not found; logging to stdout only") {
					t.Errorf("stdout:\n%s", r.stdout)
				}
			}
			if !strings.Contains(r.stdout, "backup complete") {
				t.Errorf("stdout:\n%s", r.stdout)
			}
		})
	}
}

// Two backups into one directory at once: the second refuses.
func TestBackup_OneAtATime(t *testing.T) {
	t.Parallel()
	needTools(t, "flock")
	path := migratedSQLite(t)
	dir := t.TempDir()
	holder := exec.CommandContext(t.Context(), "flock", filepath.Join(dir, ".lock"), "sleep", "30") //nolint:gosec // test tool
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Process.Kill(); _ = holder.Wait() })
	// flock takes the lock as it starts; wait until it holds it.
	for i := 0; exec.Command("flock", "-n", filepath.Join(dir, ".lock"), "true").Run() == nil; i++ { //nolint:gosec // test tool
		if i > 100 {
			t.Fatal("the lock holder never took the lock")
		}
		time.Sleep(20 * time.Millisecond)
	}
	line := run(t, map[string]string{"APP_DATABASE_SQLITE_PATH": path, "BACKUP_DIR": dir}, "backup.sh").failureLine(t)
	if !strings.Contains(line, "another backup is running in "+dir) {
		t.Errorf("failure line %q", line)
	}
}

func TestScripts_Usage(t *testing.T) {
	t.Parallel()
	for script, args := range map[string][]string{
		"backup.sh":  {"extra"},
		"restore.sh": {"only-a-file"},
		"verify.sh":  {},
		"prune.sh":   {"--nope"},
	} {
		r := run(t, nil, script, args...)
		if r.code != 2 || !strings.HasPrefix(r.stderr, "notes-api-backup: usage: "+script) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%s %v: exit %d, stderr %q; want 2 and one usage line", script, args, r.code, r.stderr)
		}
		if r := run(t, nil, script, "--help"); r.code != 0 || !strings.HasPrefix(r.stdout, "usage: "+script) {
			t.Errorf("%s --help: exit %d, stdout %q", script, r.code, r.stdout)
		}
	}
}

// verify.sh refuses what restore.sh refuses, and says early when it has
// nowhere to record its result.
func TestVerify_Refusals(t *testing.T) {
	t.Parallel()
	path := migratedSQLite(t)
	dir := t.TempDir()
	run(t, map[string]string{"APP_DATABASE_SQLITE_PATH": path, "BACKUP_DIR": dir}, "backup.sh").mustSucceed(t)
	manifestPath, m := onlyBackup(t, dir)

	r := run(t, map[string]string{"APP_DATABASE_SQLITE_PATH": filepath.Join(t.TempDir(), "elsewhere.db")}, "verify.sh", "--no-record", manifestPath).mustSucceed(t)
	if !strings.Contains(r.stdout, "restore time: ") {
		t.Errorf("verify.sh --no-record stdout:\n%s", r.stdout)
	}

	_, file, _ := copyBackup(t, manifestPath, m)
	b := read(t, file)
	b[len(b)/3] ^= 0x80
	write(t, file, b)
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"flipped byte", map[string]string{"APP_DATABASE_SQLITE_PATH": path}, []string{file}, "corrupted; refusing to use it"},
		{"no database to record in", map[string]string{"APP_DATABASE_SQLITE_PATH": filepath.Join(t.TempDir(), "elsewhere.db")},
			[]string{manifestPath}, "cannot record the result"},
		{"a database of another kind", map[string]string{"DATABASE_URL": "postgres://notes:" + fakePassword + "@127.0.0.1:1/notes"},
			[]string{manifestPath}, "nowhere to record it; pass --no-record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := run(t, tt.env, "verify.sh", tt.args...).failureLine(t)
			if !strings.Contains(line, tt.want) {
				t.Errorf("failure line %q; want %q", line, tt.want)
			}
		})
	}
}

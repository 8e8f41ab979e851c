package backup_test

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prodready/service/internal/database"
)

// scratchDBs lists the databases named with prefix on the test server.
func scratchDBs(t *testing.T, admin *sql.DB, prefix string) []string {
	t.Helper()
	rows, err := admin.QueryContext(t.Context(), "SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY 1", prefix)
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
	return names
}

func workDirs(t *testing.T, dir string) []string {
	t.Helper()
	found, err := filepath.Glob(filepath.Join(dir, ".notes-api-backup.*"))
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// A run killed with SIGKILL cannot clean up after itself. The next run
// removes what it left, the scratch database on the server and the work
// directory, and leaves alone what live runs (here: their locks held by the
// test) are still using.
func TestBackup_KilledRunsAreSwept(t *testing.T) {
	t.Parallel()
	dbURL, name, admin := newPostgresDatabase(t)
	migrate(t, openDB(t, database.Options{URL: dbURL}))
	prefix := name + "_drill"
	dead, live := prefix+"_20260101000000_1", prefix+"_20260101000000_2"
	for _, db := range []string{dead, live} {
		if _, err := admin.ExecContext(t.Context(), "CREATE DATABASE "+db); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)") })
	}
	// Advisory locks belong to a database: the scripts take theirs in the
	// maintenance database, postgres (BACKUP_PG_ADMIN_DB).
	maint, err := sql.Open("pgx", withDB(dbURL, name, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer maint.Close()
	holder, err := maint.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if _, err := holder.ExecContext(t.Context(), "SELECT pg_advisory_lock(1852796276, hashtext($1))", live); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	deadDir, liveDir := filepath.Join(dir, ".notes-api-backup.dead01"), filepath.Join(dir, ".notes-api-backup.live01")
	for _, d := range []string{deadDir, liveDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(d, "notes-api-postgres-20260101T000000Z.pgdump"), bytes.Repeat([]byte("x"), 1<<16))
		write(t, filepath.Join(d, ".lock"), nil)
	}
	lock, err := os.Open(filepath.Join(liveDir, ".lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}

	r := run(t, map[string]string{"DATABASE_URL": dbURL, "BACKUP_DIR": dir, "BACKUP_SCRATCH_PREFIX": prefix}, "backup.sh").mustSucceed(t)
	for _, want := range []string{"removed the work directory of a run that was killed: " + deadDir, "dropped scratch databases of runs that were killed: " + dead} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout should say %q:\n%s", want, r.stdout)
		}
	}
	if got := scratchDBs(t, admin, prefix); len(got) != 1 || got[0] != live {
		t.Errorf("scratch databases after the run: %v; want only the live run's %s", got, live)
	}
	if got := workDirs(t, dir); len(got) != 1 || got[0] != liveDir {
		t.Errorf("work directories after the run: %v; want only the live run's %s", got, liveDir)
	}
}

// SIGTERM (Kubernetes, systemd) and SIGINT (a person) in the middle of the
// verification step: the run stops its pg_restore at once, drops the
// scratch database, removes its work directory and says so in one line.
func TestBackup_SignalsCleanUp(t *testing.T) {
	t.Parallel()
	needTools(t, "pg_restore") // loud, and a failure under REQUIRE_SERVICES=1
	realRestore, err := exec.LookPath("pg_restore")
	if err != nil {
		t.Fatal(err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			dbURL, name, admin := newPostgresDatabase(t)
			migrate(t, openDB(t, database.Options{URL: dbURL}))
			prefix := name + "_drill"
			dir, bin := t.TempDir(), t.TempDir()
			started := filepath.Join(bin, "started")
			// A pg_restore that takes 30 s: the signal arrives while it runs.
			write(t, filepath.Join(bin, "pg_restore"), []byte("#!/bin/sh\ntouch "+started+"\nsleep 30 >/dev/null 2>&1\nexec "+realRestore+" \"$@\"\n"))
			if err := os.Chmod(filepath.Join(bin, "pg_restore"), 0o755); err != nil { //nolint:gosec // a test executable
				t.Fatal(err)
			}
			cmd := exec.CommandContext(t.Context(), "bash", "backup.sh")
			cmd.Env = []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + dir, "BACKUP_SYSLOG=0",
				"DATABASE_URL=" + dbURL, "BACKUP_DIR=" + dir, "BACKUP_SCRATCH_PREFIX=" + prefix}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(time.Minute)
			for {
				if _, err := os.Stat(started); err == nil {
					break
				}
				if time.Now().After(deadline) {
					_ = cmd.Process.Kill()
					t.Fatalf("pg_restore never started; stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			if got := scratchDBs(t, admin, prefix); len(got) != 1 {
				t.Fatalf("scratch databases while verifying: %v; want one", got)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			if code := cmd.ProcessState.ExitCode(); err == nil || code != 1 {
				t.Errorf("exit %d (%v); want 1", code, err)
			}
			if want := "notes-api-backup: FAILED: interrupted (" + sigName(sig) + ")\n"; stderr.String() != want {
				t.Errorf("stderr %q; want %q", stderr.String(), want)
			}
			if got := scratchDBs(t, admin, prefix); len(got) != 0 {
				t.Errorf("scratch databases after %s: %v; want none", sig, got)
			}
			if got := workDirs(t, dir); len(got) != 0 {
				t.Errorf("work directories after %s: %v; want none", sig, got)
			}
			if m, _ := filepath.Glob(filepath.Join(dir, "notes-api-*")); len(m) != 0 {
				t.Errorf("an interrupted run left backup files: %v", m)
			}
		})
	}
}

func sigName(s syscall.Signal) string {
	if s == syscall.SIGINT {
		return "SIGINT"
	}
	return "SIGTERM"
}

package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" for the drill's own SQL

	"github.com/prodready/service/internal/backup"
	"github.com/prodready/service/internal/database"
	"github.com/prodready/service/internal/health"
	"github.com/prodready/service/internal/servicetest"
)

// The point-in-time recovery drills (docs/BACKUP.md): the real program
// writes notes continuously into a database that a real tool backs up
// continuously; the test notes a moment, lets more writes land, drops the
// notes table, restores to the moment, and compares the restored notes with
// what the API acknowledged: exactly those written before the moment, by id
// and content.
//
// PITR_NOTES seeds that many notes before the base backup (default a few;
// `make backup-drill` runs 100,000 to measure docs/BACKUP.md's figures).

// ackedNote is a note the API answered 201 for.
type ackedNote struct{ id, title, body string }

// noteWriter posts notes one after another until stopped, remembering every
// acknowledged one in order. mark takes the lock between two requests, so
// the moment it notes splits the notes cleanly into before and after.
type noteWriter struct {
	a     *app
	mu    sync.Mutex
	acked []ackedNote
	err   error
	stop  chan struct{}
	done  chan struct{}
}

func startWriter(a *app) *noteWriter {
	w := &noteWriter{a: a, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		client := &http.Client{Timeout: 10 * time.Second}
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			w.mu.Lock()
			n, err := postNote(client, a.url, i)
			if err == nil {
				w.acked = append(w.acked, n)
			} else if w.err == nil {
				w.err = err
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func postNote(client *http.Client, base string, i int) (ackedNote, error) {
	n := ackedNote{title: fmt.Sprintf("drill note %d", i), body: fmt.Sprintf("written at %s", time.Now().UTC().Format(time.RFC3339Nano))}
	body := fmt.Sprintf(`{"title":%q,"body":%q}`, n.title, n.body)
	resp, err := client.Post(base+"/v1/notes", "application/json", strings.NewReader(body))
	if err != nil {
		return n, err
	}
	defer resp.Body.Close()
	var created struct {
		ID string `json:"id"`
	}
	if resp.StatusCode != http.StatusCreated {
		return n, fmt.Errorf("POST /v1/notes: %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&created); err != nil {
		return n, err
	}
	n.id = created.ID
	return n, nil
}

// count waits until at least n more notes than now were acknowledged.
func (w *noteWriter) waitFor(t *testing.T, more int) {
	t.Helper()
	w.mu.Lock()
	target := len(w.acked) + more
	w.mu.Unlock()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		n, err := len(w.acked), w.err
		w.mu.Unlock()
		if err != nil {
			t.Fatalf("writer: %v", err)
		}
		if n >= target {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the writer did not reach %d notes in 2 minutes", target)
}

// mark pauses the writer between two requests, runs settle (waiting for the
// replica to catch up, where the tool syncs periodically), notes the time,
// and returns it with the notes acknowledged before it.
func (w *noteWriter) mark(settle func()) (time.Time, []ackedNote) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if settle != nil {
		settle()
	}
	at := time.Now()
	before := append([]ackedNote(nil), w.acked...)
	// The next commit must be stamped later than the mark, to the microsecond.
	time.Sleep(2 * time.Millisecond)
	return at, before
}

func (w *noteWriter) halt(t *testing.T) []ackedNote {
	t.Helper()
	close(w.stop)
	<-w.done
	if w.err != nil {
		t.Fatalf("writer: %v", w.err)
	}
	return w.acked
}

// compareNotes fails unless rows holds the seed seeded notes and exactly
// want, by id, title and body.
func compareNotes(t *testing.T, rows *sql.Rows, seed int, want []ackedNote) {
	t.Helper()
	defer rows.Close()
	got, seeded := map[string]ackedNote{}, 0
	for rows.Next() {
		var n ackedNote
		if err := rows.Scan(&n.id, &n.title, &n.body); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(n.id, "seed-") {
			seeded++
			continue
		}
		got[n.id] = n
	}
	if seeded != seed {
		t.Errorf("restore has %d of the %d seeded notes", seeded, seed)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	missing, extra := 0, len(got)
	for _, n := range want {
		g, ok := got[n.id]
		switch {
		case !ok:
			missing++
			if missing <= 3 {
				t.Errorf("note %s (%q), acknowledged before the mark, is not in the restore", n.id, n.title)
			}
		case g != n:
			t.Errorf("note %s restored as %+v; the API acknowledged %+v", n.id, g, n)
			extra--
		default:
			extra--
		}
	}
	if missing > 0 || extra > 0 {
		t.Errorf("restore has %d notes; want exactly the %d acknowledged before the mark (%d missing, %d written after it)", len(got), len(want), missing, extra)
	}
}

func drillSeed(t *testing.T) int {
	t.Helper()
	if v := os.Getenv("PITR_NOTES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("PITR_NOTES=%q: %v", v, err)
		}
		return n
	}
	return 0
}

// seedNotes inserts n notes in one statement, as a database that already
// holds data, before the base backup (the drills write the rest through the API).
func seedNotes(t *testing.T, db *sql.DB, n int, sqlite bool) {
	t.Helper()
	if n == 0 {
		return
	}
	q := `INSERT INTO notes (id, title, body, version, created_at, updated_at)
		SELECT 'seed-' || g, 'seeded note ' || g, md5(g::text) || repeat('x', 400), 1, now(), now() FROM generate_series(1, $1) g`
	if sqlite {
		q = `WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?)
		INSERT INTO notes (id, title, body, version, created_at, updated_at)
		SELECT 'seed-' || n, 'seeded note ' || n, hex(randomblob(16)) || printf('%.400c', 'x'), 1,
			strftime('%Y-%m-%d %H:%M:%f+00:00', 'now'), strftime('%Y-%m-%d %H:%M:%f+00:00', 'now') FROM g`
	}
	if _, err := db.ExecContext(t.Context(), q, n); err != nil {
		t.Fatalf("seed %d notes: %v", n, err)
	}
}

func needCommands(t *testing.T, cmds ...string) {
	t.Helper()
	for _, c := range cmds {
		if _, err := exec.LookPath(c); err != nil {
			servicetest.Missing(t, c, "not on PATH")
		}
	}
}

// script runs scripts/backup/<name> as the postgres user with env, failing
// the test with its output when it fails; it returns stdout and the time taken.
func script(t *testing.T, env []string, name string, args ...string) (string, time.Duration) {
	t.Helper()
	return runScript(t, true, env, name, args...)
}

func runScript(t *testing.T, asPostgres bool, env []string, name string, args ...string) (string, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	path, err := filepath.Abs(filepath.Join("..", "..", "scripts", "backup", name))
	if err != nil {
		t.Fatal(err)
	}
	argv := append(append([]string{}, env...), append([]string{"bash", path}, args...)...)
	cmd := exec.CommandContext(ctx, "env", argv...)
	if asPostgres {
		cmd = servicetest.AsPostgres(ctx, "env", argv...)
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), took
}

// statusCheck returns the status and output of one check on /status.
func statusCheck(t *testing.T, a *app, name string) (status, output string, observed any) {
	t.Helper()
	_, body := a.do(t, "GET", "/status", "", "Authorization", "Bearer "+testToken)
	checks, _ := body["checks"].(map[string]any)
	list, _ := checks[name].([]any)
	if len(list) == 0 {
		t.Fatalf("/status has no %s check: %v", name, body)
	}
	c := list[0].(map[string]any)
	s, _ := c["status"].(string)
	o, _ := c["output"].(string)
	return s, o, c["observedValue"]
}

func waitStatus(t *testing.T, a *app, name, want string, within time.Duration) (output string, observed any) {
	t.Helper()
	deadline := time.Now().Add(within)
	var s string
	for {
		s, output, observed = statusCheck(t, a, name)
		if s == want {
			return output, observed
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s stayed %q (%s) for %s; want %q", name, s, output, within, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestPITR_PostgreSQL is the pgBackRest drill: a cluster of the test's own
// archiving WAL through pgbackrest archive-push into an encrypted
// repository, a full base backup by scripts/backup/pgbackrest-backup.sh,
// notes written through the API, a moment, more notes, DROP TABLE notes,
// then scripts/backup/pgbackrest-restore.sh to the moment into a scratch
// cluster. It then breaks the archive command and watches backup:age fail.
func TestPITR_PostgreSQL(t *testing.T) {
	t.Parallel() // own ports, database and child processes; it must never signal os.Getpid() (the in-process app shares the SIGHUP handler)
	needCommands(t, "pgbackrest")
	dir := servicetest.PostgresOwnedDir(t)
	conf := filepath.Join(dir, "pgbackrest.conf")
	// The repository's settings are the template's (scripts/backup/pgbackrest/),
	// with paths inside the test's directory.
	template, err := os.ReadFile("../../scripts/backup/pgbackrest/pgbackrest.conf")
	if err != nil {
		t.Fatal(err)
	}
	// archive-push runs inside the server, which reads the same file.
	archive := "pgbackrest --config=" + conf + " --stanza=notes archive-push %p"
	c := servicetest.NewCluster(t, dir, "wal_level = replica", "archive_mode = on", "archive_command = '"+archive+"'", "archive_timeout = 60")
	// A new cluster has archived no WAL segment: nothing can be recovered yet.
	fresh, err := database.Open(t.Context(), database.Options{URL: c.URL("postgres")})
	if err != nil {
		t.Fatal(err)
	}
	if r := backup.ArchiveCheck(fresh, time.Minute, time.Hour, 26*time.Hour, 50*time.Hour, nil).Run(t.Context()); r.Status != health.Fail || r.Output != "no WAL segment archived yet" {
		t.Errorf("backup:age on a cluster that has archived nothing: %s %q; want fail, no WAL segment archived yet", r.Status, r.Output)
	}
	_ = fresh.Close()
	// The passphrase is in the file here; in production it comes from
	// PGBACKREST_REPO1_CIPHER_PASS or an include file only postgres reads.
	cfg := strings.NewReplacer(
		"repo1-path=/var/lib/pgbackrest", "repo1-path="+filepath.Join(dir, "repo")+"\nlock-path="+filepath.Join(dir, "lock")+
			"\nlog-path="+filepath.Join(dir, "log")+"\nrepo1-cipher-pass=drill-passphrase-0123456789",
		"pg1-path=/var/lib/postgresql/15/main", fmt.Sprintf("pg1-path=%s\npg1-port=%d\npg1-socket-path=%s", c.Data, c.Port, dir),
	).Replace(string(template))
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil { //nolint:gosec // the drill's throwaway passphrase, read by the postgres user
		t.Fatal(err)
	}
	// DATABASE_URL: where pgbackrest-backup.sh records each verified backup.
	env := []string{"PGBACKREST_CONFIG=" + conf, "TMPDIR=" + dir, "BACKUP_SYSLOG=0", "PG_BIN=" + c.Bin, "DATABASE_URL=" + c.URL("notes")}
	pg, err := sql.Open("pgx", c.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if _, err := pg.ExecContext(t.Context(), "CREATE DATABASE notes"); err != nil {
		t.Fatal(err)
	}
	a := startApp(t, map[string]string{"APP_DATABASE_URL": c.URL("notes"), "APP_BACKUP_CHECK": "on",
		"APP_BACKUP_MODE": "continuous", "APP_STATUS_CACHE_TTL": "0s"})
	notes, err := sql.Open("pgx", c.URL("notes"))
	if err != nil {
		t.Fatal(err)
	}
	defer notes.Close()
	seed := drillSeed(t)
	seedNotes(t, notes, seed, false)

	out, took := script(t, env, "pgbackrest-backup.sh", "full")
	if !strings.Contains(out, "repository verified") {
		t.Fatalf("pgbackrest-backup.sh full did not verify the repository:\n%s", out)
	}
	backupDone := time.Now()
	t.Logf("full backup of %d seeded notes, verified: %s", seed, took.Round(time.Millisecond))
	// Recorded in the service's backups table, as the logical dumps are.
	var id, method, label string
	var size int64
	if err := notes.QueryRowContext(t.Context(), "SELECT id, method, file_name, size_bytes FROM backups WHERE verified_at IS NOT NULL").
		Scan(&id, &method, &label, &size); err != nil {
		t.Fatalf("the full backup is not recorded in the backups table: %v", err)
	}
	if method != "pgbackrest" || !strings.HasSuffix(label, "F") || id != "notes-api-pgbackrest-"+label || size <= 0 || !strings.Contains(out, "recorded "+id) {
		t.Errorf("recorded %s: method %s, label %s, %d bytes; want a pgbackrest full backup (label ...F) with its size, named in the log:\n%s", id, method, label, size, out)
	}
	if s, o, _ := statusCheck(t, a, "backup:age"); s != "pass" {
		t.Errorf("backup:age after the first archived segment: %s (%s); want pass", s, o)
	}
	t.Run("backup:age fails without a recorded base backup", func(t *testing.T) {
		// Archived WAL with no base backup to replay it onto restores nothing.
		if _, err := notes.ExecContext(t.Context(), "UPDATE backups SET verified_at = NULL"); err != nil {
			t.Fatal(err)
		}
		if s, o, _ := statusCheck(t, a, "backup:age"); s != "fail" || !strings.Contains(o, "no verified pgBackRest backup recorded") {
			t.Errorf("backup:age without a base backup: %s (%s); want fail saying no pgBackRest backup is recorded", s, o)
		}
		if _, err := notes.ExecContext(t.Context(), "UPDATE backups SET verified_at = now()"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("backup:age warns, then fails, as the base backup ages", func(t *testing.T) {
		// The thresholds are the dump mode's (backup.warn_after 26h,
		// backup.fail_after 50h): WAL replays only onto a base backup.
		for _, tt := range []struct{ shift, status, says string }{
			{"30 hours", "warn", "old (warn after 26h0m0s)"},
			{"30 hours", "fail", "old (fail after 50h0m0s)"}, // 60 hours in all
		} {
			if _, err := notes.ExecContext(t.Context(), "UPDATE backups SET completed_at = completed_at - interval '"+tt.shift+"'"); err != nil {
				t.Fatal(err)
			}
			if s, o, _ := statusCheck(t, a, "backup:age"); s != tt.status || !strings.Contains(o, "newest verified pgBackRest backup") || !strings.Contains(o, tt.says) {
				t.Errorf("backup:age with the base backup aged: %s (%s); want %s saying %q", s, o, tt.status, tt.says)
			}
		}
		if _, err := notes.ExecContext(t.Context(), "UPDATE backups SET completed_at = completed_at + interval '60 hours'"); err != nil {
			t.Fatal(err)
		}
	})

	// pgBackRest restores to a time only from a backup set that stopped
	// before it, and keeps that stop time in whole seconds: a CI run fast
	// enough to take its mark in the second the backup stopped found no set
	// ("unable to find backup set with stop time less than ..."). So the
	// mark comes after that second, as an operator's target would.
	time.Sleep(time.Until(backupDone.Truncate(time.Second).Add(time.Second)))
	w := startWriter(a)
	w.waitFor(t, 30)
	mark, before := w.mark(nil)
	w.waitFor(t, 30)
	all := w.halt(t)
	if _, err := notes.ExecContext(t.Context(), "DROP TABLE notes"); err != nil {
		t.Fatal(err)
	}
	disaster := time.Now()
	// The incident runbook's first step: push the WAL segment in use into
	// the archive (and prove archiving works) before restoring.
	if out, _ := script(t, env, "pgbackrest-backup.sh", "check"); !strings.Contains(out, "archive check passed") {
		t.Fatalf("pgbackrest-backup.sh check:\n%s", out)
	}

	scratch := &servicetest.Cluster{Data: filepath.Join(dir, "scratch")}
	port := servicetest.FreePort(t)
	scratch.Port = port
	target := mark.UTC().Format("2006-01-02 15:04:05.000000+00")
	out, took = script(t, env, "pgbackrest-restore.sh", "--time", target, "--scratch", scratch.Data, "--port", strconv.Itoa(port))
	t.Cleanup(func() {
		servicetest.RunAsPostgres(t, filepath.Join(servicetest.PostgresBin(t), "pg_ctl"), "--pgdata="+scratch.Data, "--mode=immediate", "stop")
	})
	if !strings.Contains(out, "restored and started") {
		t.Fatalf("pgbackrest-restore.sh:\n%s", out)
	}
	restored, err := sql.Open("pgx", scratch.URL("notes"))
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	rows, err := restored.QueryContext(t.Context(), "SELECT id, title, body FROM notes")
	if err != nil {
		t.Fatalf("read the restored notes: %v", err)
	}
	compareNotes(t, rows, seed, before)
	t.Logf("restore to %s (%d of %d notes acknowledged before it, %d seeded): %s; data lost at the mark: 0 notes; incident to restored: %s",
		target, len(before), len(all), seed, took.Round(time.Millisecond), time.Since(disaster).Round(time.Millisecond))

	t.Run("backup:age fails when the archive command breaks", func(t *testing.T) {
		if _, err := pg.ExecContext(t.Context(), "ALTER SYSTEM SET archive_command = 'false'"); err != nil {
			t.Fatal(err)
		}
		if _, err := pg.ExecContext(t.Context(), "SELECT pg_reload_conf()"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // the archiver rereads its configuration
		if _, err := pg.ExecContext(t.Context(), "CREATE TABLE wal_filler AS SELECT 1 AS x; SELECT pg_switch_wal()"); err != nil {
			t.Fatal(err)
		}
		out, _ := waitStatus(t, a, "backup:age", "fail", time.Minute)
		if !strings.Contains(out, "archive_command is failing") {
			t.Errorf("backup:age output %q; want it to say the archive command is failing", out)
		}
		if _, err := pg.ExecContext(t.Context(), "ALTER SYSTEM RESET archive_command"); err != nil {
			t.Fatal(err)
		}
		if _, err := pg.ExecContext(t.Context(), "SELECT pg_reload_conf()"); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, a, "backup:age", "pass", time.Minute)
	})
}

// litestreamBin is the pinned Litestream that `make litestream` builds.
func litestreamBin(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("LITESTREAM"); bin != "" {
		return bin
	}
	found, _ := filepath.Glob("../../.tools/litestream-v*")
	if len(found) == 0 {
		servicetest.Missing(t, "litestream", "not in .tools/ (run make litestream)")
	}
	bin, err := filepath.Abs(found[len(found)-1])
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// lastSync asks Litestream's control socket when it last synced file.
func lastSync(t *testing.T, socket, file string) time.Time {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
	resp, err := client.Get("http://litestream/list")
	if err != nil {
		return time.Time{}
	}
	defer resp.Body.Close()
	var body struct {
		Databases []struct {
			Path       string     `json:"path"`
			LastSyncAt *time.Time `json:"last_sync_at"`
		} `json:"databases"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("litestream /list: %v", err)
	}
	for _, d := range body.Databases {
		if d.Path == file && d.LastSyncAt != nil {
			return *d.LastSyncAt
		}
	}
	return time.Time{}
}

// waitSynced waits until Litestream finished a sync that started after now,
// so everything committed before now is in the replica.
func waitSynced(t *testing.T, socket, file string) {
	t.Helper()
	after := time.Now().Add(1100 * time.Millisecond) // one sync-interval (1s) later
	deadline := time.Now().Add(time.Minute)
	for lastSync(t, socket, file).Before(after) {
		if time.Now().After(deadline) {
			t.Fatalf("Litestream did not sync %s within a minute", file)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPITR_SQLite is the Litestream drill: the service on a SQLite file,
// Litestream (the pinned build, with the project's litestream.yml)
// replicating it to a file replica, notes written through the API, a
// moment, more notes, DROP TABLE notes, then
// scripts/backup/litestream-restore.sh to the moment. backup:age reports
// Litestream's last sync on the way.
func TestPITR_SQLite(t *testing.T) {
	t.Parallel() // own ports, database and child processes; it must never signal os.Getpid() (the in-process app shares the SIGHUP handler)
	bin := litestreamBin(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "data", "notes.db")
	socket := filepath.Join(dir, "litestream.sock")
	replica := "file://" + filepath.Join(dir, "replica")
	a := startApp(t, map[string]string{"APP_DATABASE_SQLITE_PATH": file, "APP_BACKUP_CHECK": "on",
		"APP_BACKUP_MODE": "continuous", "APP_BACKUP_LITESTREAM_SOCKET": socket, "APP_STATUS_CACHE_TTL": "0s"})
	if s, o, _ := statusCheck(t, a, "backup:age"); s != "fail" || !strings.Contains(o, "Litestream") {
		t.Errorf("backup:age without Litestream running: %s (%s); want fail naming Litestream", s, o)
	}
	db, err := sql.Open("sqlite", file)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	seed := drillSeed(t)
	seedNotes(t, db, seed, true)

	ctx, cancel := context.WithCancel(context.Background())
	ls := exec.CommandContext(ctx, bin, "replicate", "-config", "../../scripts/backup/litestream/litestream.yml")
	ls.Env = append(os.Environ(), "APP_DATABASE_SQLITE_PATH="+file, "LITESTREAM_REPLICA_URL="+replica, "LITESTREAM_SOCKET="+socket)
	lsLog := &servicetest.LogBuffer{}
	ls.Stdout, ls.Stderr = lsLog, lsLog
	ls.Cancel = func() error { return ls.Process.Signal(syscall.SIGTERM) }
	ls.WaitDelay = 10 * time.Second
	if err := ls.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = ls.Wait()
		if t.Failed() {
			t.Logf("litestream:\n%s", lsLog.String())
		}
	})
	_, observed := waitStatus(t, a, "backup:age", "pass", time.Minute)
	t.Logf("backup:age with Litestream replicating: pass, %vs", observed)

	w := startWriter(a)
	w.waitFor(t, 30)
	mark, before := w.mark(func() { waitSynced(t, socket, file) })
	w.waitFor(t, 30)
	all := w.halt(t)
	if _, err := db.ExecContext(t.Context(), "DROP TABLE notes"); err != nil {
		t.Fatal(err)
	}
	disaster := time.Now()
	// The mistake reaches the replica a second later, as it would in
	// production: what follows restores from a replica that has it.
	waitSynced(t, socket, file)

	restored := filepath.Join(dir, "restored.db")
	target := mark.UTC().Format(time.RFC3339Nano)
	out, took := runScript(t, false, []string{"LITESTREAM=" + bin, "LITESTREAM_REPLICA_URL=" + replica, "TMPDIR=" + dir, "BACKUP_SYSLOG=0"},
		"litestream-restore.sh", "--time", target, "--output", restored)
	if !strings.Contains(out, "restored "+restored) {
		t.Fatalf("litestream-restore.sh:\n%s", out)
	}
	rdb, err := sql.Open("sqlite", restored)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	rows, err := rdb.QueryContext(t.Context(), "SELECT id, title, body FROM notes")
	if err != nil {
		t.Fatalf("read the restored notes: %v", err)
	}
	compareNotes(t, rows, seed, before)
	t.Logf("restore to %s (%d of %d notes acknowledged before it, %d seeded): %s; data lost at the mark: 0 notes; incident to restored: %s",
		target, len(before), len(all), seed, took.Round(time.Millisecond), time.Since(disaster).Round(time.Millisecond))
}

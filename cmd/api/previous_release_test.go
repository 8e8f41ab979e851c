package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prodready/service/internal/servicetest"
)

// The N-1 schema test (docs/RELEASE.md, "Expand, then contract"). During a
// rollout the previous release serves beside this one on the schema this
// one migrated, and a rollback runs it there for good. So this test builds
// the previous release's binary from git, migrates a database with this
// release's migrations, and runs both side by side on it, on SQLite and on
// PostgreSQL:
//
//   - the previous binary's `migrate up` (what the rollback's migration Job
//     runs) succeeds and changes nothing; its `migrate status` reads the
//     newer migration record;
//   - it serves the whole notes scenario (notesScenario, create to delete)
//     and its /status passes: database, migrations, backup:age reading a
//     backups table this release has extended;
//   - a note either version writes, the other reads unchanged.
//
// A contract migration (a DROP or rename the previous release still uses)
// fails it, which is the point: contract one release later.
//
// "The previous release" is PREVIOUS_RELEASE (any git revision) if set;
// else the newest vX.Y.Z tag before HEAD, the release a rollback returns
// to; else, in a history without release tags, the parent of the newest
// commit that changed a migration set (internal/database/migrations,
// internal/notes/migrations; HEAD while migrations are uncommitted): the
// last binary built for the previous schema.
func TestPreviousReleaseRunsOnTheNewSchema(t *testing.T) {
	t.Parallel() // own ports, database and child processes; it must never signal os.Getpid() (the in-process app shares the SIGHUP handler)
	ref, why := previousRelease(t)
	bin := buildRelease(t, ref)
	t.Logf("previous release: %s (%s), built as %s", ref, why, bin)

	t.Run("sqlite", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "data", "notes.db")
		sideBySide(t, bin, map[string]string{"APP_DATABASE_SQLITE_PATH": file})
	})
	t.Run("postgres", func(t *testing.T) {
		sideBySide(t, bin, map[string]string{"APP_DATABASE_URL": servicetest.PostgresURL(t)})
	})
}

// repository runs git in the repository and returns its trimmed output.
func repository(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = filepath.Join("..", "..")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// migrationPaths names every migration set: the core one in
// internal/database/migrations and each resource's own (internal/notes/migrations).
const migrationPaths = ":(glob)internal/**/migrations/**"

func previousRelease(t *testing.T) (ref, why string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		servicetest.Missing(t, "git", "the previous release is built from the repository's history")
	}
	if ref := os.Getenv("PREVIOUS_RELEASE"); ref != "" {
		sha, err := repository(t, "rev-parse", "--verify", ref+"^{commit}")
		if err != nil {
			t.Fatalf("PREVIOUS_RELEASE=%s: %v", ref, err)
		}
		return sha, "PREVIOUS_RELEASE=" + ref
	}
	if tag, err := repository(t, "describe", "--tags", "--abbrev=0", "--match", "v[0-9]*", "HEAD^"); err == nil && tag != "" {
		sha, err := repository(t, "rev-parse", tag+"^{commit}")
		if err != nil {
			t.Fatal(err)
		}
		return sha, "the newest release tag before HEAD, " + tag
	}
	// Migrations not committed yet (while writing one): HEAD is the previous schema's binary.
	if dirty, err := repository(t, "status", "--porcelain", "--", migrationPaths); err == nil && dirty != "" {
		sha, err := repository(t, "rev-parse", "HEAD")
		if err != nil {
			t.Fatal(err)
		}
		return sha, "no release tag, uncommitted migrations: HEAD"
	}
	changed, err := repository(t, "log", "-1", "--format=%H", "--", migrationPaths)
	if err != nil || changed == "" {
		servicetest.Missing(t, "git history", fmt.Sprintf("no commit that changed the migrations (a shallow clone? fetch-depth: 0): %v", err))
	}
	parent, err := repository(t, "rev-parse", "--verify", changed+"^")
	if err != nil {
		servicetest.Missing(t, "git history", "the parent of "+changed+" is not in this clone (shallow?): "+err.Error())
	}
	return parent, "no release tag: the parent of " + changed[:12] + ", the newest migration change"
}

// buildRelease builds cmd/api as it was at ref, from git archive (the
// repository's work trees are left alone), into a directory the test owns.
func buildRelease(t *testing.T, ref string) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	archive := exec.CommandContext(ctx, "sh", "-c", `git -C "$1" archive --format=tar "$2" | tar -x -C "$3"`, "sh",
		filepath.Join("..", ".."), ref, src)
	if out, err := archive.CombinedOutput(); err != nil {
		t.Fatalf("git archive %s: %v\n%s", ref, err, out)
	}
	bin := filepath.Join(dir, "api-previous")
	// Built the way this test binary was (servicetest.GoFlags: -race under
	// make test, no -trimpath): the dependencies it shares with this release
	// come from the build cache instead of a second full compile of them.
	build := exec.CommandContext(ctx, "go", "build", "-o", bin,
		"-ldflags", "-X main.version=previous-"+ref[:12]+" -X main.commit="+ref, "./cmd/api")
	build.Dir = src
	build.Env = append(os.Environ(), "GOFLAGS="+servicetest.GoFlags())
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the previous release (%s): %v\n%s", ref, err, out)
	}
	return bin
}

// process is a release's binary running as its own process.
type process struct {
	cmd  *exec.Cmd
	logs *servicetest.LogBuffer
}

// runRelease runs the binary with args and env on top of startApp's
// development defaults, and returns its combined output once it exits.
func runRelease(t *testing.T, bin string, env map[string]string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = releaseEnv(env)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("previous release: api %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func releaseEnv(env map[string]string) []string {
	base := devEnv(env)
	if _, ok := base["PATH"]; !ok {
		base["PATH"] = os.Getenv("PATH")
	}
	out := make([]string, 0, len(base))
	for k, v := range base {
		out = append(out, k+"="+v)
	}
	return out
}

// serveRelease starts `api serve` of the binary and returns it as an app
// the tests' HTTP helpers drive.
func serveRelease(t *testing.T, bin string, env map[string]string) (*app, *process) {
	t.Helper()
	p := &process{logs: &servicetest.LogBuffer{}}
	p.cmd = exec.Command(bin, "serve")
	p.cmd.Env = releaseEnv(env)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			t.Error("the previous release did not stop within 30s of SIGINT")
		}
		if t.Failed() {
			t.Logf("previous release's log:\n%s", p.logs.String())
		}
	})
	deadline := time.Now().Add(time.Minute)
	for {
		if m := listenRe.FindStringSubmatch(p.logs.String()); m != nil {
			return &app{url: "http://" + m[1], logs: p.logs, client: &http.Client{Timeout: 10 * time.Second}}, p
		}
		select {
		case err := <-exited:
			t.Fatalf("the previous release stopped at start: %v\n%s", err, p.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the previous release did not listen within a minute:\n%s", p.logs.String())
		}
	}
}

func sideBySide(t *testing.T, bin string, db map[string]string) {
	// This release first: it migrates at start, as its migration Job would.
	current := startApp(t, mergeEnv(db, map[string]string{"APP_DATABASE_MIGRATE_ON_START": "true"}))
	previousEnv := mergeEnv(db, map[string]string{"APP_DATABASE_MIGRATE_ON_START": "false", "APP_BACKUP_CHECK": "on", "APP_STATUS_CACHE_TTL": "0s"})

	// A rollback's migration Job: the previous binary finds nothing to do.
	out := runRelease(t, bin, previousEnv, "migrate", "up")
	if strings.Contains(out, `"msg":"migration applied"`) {
		t.Errorf("the previous release's migrate up applied migrations on the new schema:\n%s", out)
	}
	runRelease(t, bin, previousEnv, "migrate", "status")

	// Backups recorded as this release's scripts record them (a dump and a
	// pgBackRest base backup, with the new method column): the previous
	// release's backup:age check still reads the table.
	recordBackups(t, db)

	previous, _ := serveRelease(t, bin, previousEnv)
	resp, body := previous.do(t, "GET", "/status", "", "Authorization", "Bearer "+testToken)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the previous release's /status on the new schema: %d %v", resp.StatusCode, body)
	}
	for _, check := range []string{"database:migrations", "backup:age"} {
		if s, o, _ := statusCheck(t, previous, check); s != "pass" {
			t.Errorf("the previous release's %s on the new schema: %s (%s); want pass", check, s, o)
		}
	}

	// Its whole notes behaviour, on the new schema.
	notesScenario(t, previous)

	// Side by side: what one version writes, the other reads.
	_, fromCurrent := current.do(t, "POST", "/v1/notes", `{"title":"written by N","body":"read by N-1"}`)
	_, fromPrevious := previous.do(t, "POST", "/v1/notes", `{"title":"written by N-1","body":"read by N"}`)
	for _, c := range []struct {
		reader *app
		name   string
		note   map[string]any
	}{{previous, "the previous release", fromCurrent}, {current, "this release", fromPrevious}} {
		id, _ := c.note["id"].(string)
		resp, got := c.reader.do(t, "GET", "/v1/notes/"+id, "")
		if resp.StatusCode != http.StatusOK || got["title"] != c.note["title"] || got["body"] != c.note["body"] || got["version"] != c.note["version"] {
			t.Errorf("%s reads note %s as %d %v; the other version wrote %v", c.name, id, resp.StatusCode, got, c.note)
		}
	}
	for line := range strings.Lines(previous.logs.String()) {
		if strings.Contains(line, `"level":"ERROR"`) {
			t.Errorf("the previous release logged an error on the new schema: %s", line)
		}
	}
}

// recordBackups inserts a verified dump and a newer verified pgBackRest
// backup with the columns this release's scripts write (lib.sh
// record_backup and record_pgbackrest_backup).
func recordBackups(t *testing.T, db map[string]string) {
	t.Helper()
	driver, dsn := "sqlite", db["APP_DATABASE_SQLITE_PATH"]
	if url, ok := db["APP_DATABASE_URL"]; ok {
		driver, dsn = "pgx", url
	}
	conn, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ts := func(ago time.Duration) string { return time.Now().Add(-ago).UTC().Format("2006-01-02 15:04:05+00:00") }
	for _, row := range []struct{ id, method, file string }{
		{"notes-api-dump-n1", "dump", "notes-api-dump-n1.pgdump"},
		{"notes-api-pgbackrest-n1", "pgbackrest", "20261202-013000F"},
	} {
		age := 2 * time.Hour
		if row.method == "pgbackrest" {
			age = time.Hour
		}
		if _, err := conn.ExecContext(t.Context(), `INSERT INTO backups (id, kind, method, file_name, sha256, size_bytes, schema_version,
			started_at, completed_at, verified_at, duration_ms, row_counts) VALUES ($1, 'postgres', $2, $3, '', 100, '-', $4, $5, $6, 60000, '{}')`,
			row.id, row.method, row.file, ts(age+time.Minute), ts(age), ts(age-time.Minute)); err != nil {
			t.Fatalf("record a %s backup as this release's scripts do: %v", row.method, err)
		}
	}
}

func mergeEnv(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

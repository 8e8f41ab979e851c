package backup_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver for the admin connection
	"github.com/uptrace/bun"

	"github.com/prodready/service/internal/cache"
	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/database"
	"github.com/prodready/service/internal/resource"
	"github.com/prodready/service/internal/resources"
	"github.com/prodready/service/internal/server"
	"github.com/prodready/service/internal/servicetest"
)

// fakePassword is put in every PostgreSQL URL the scripts get. The server
// trusts loopback, so it is never checked, but it must never be printed.
const fakePassword = "pw-Sup3r-S3cret"

// needTools skips loudly (fails under REQUIRE_SERVICES=1) when a command the
// scripts need is missing.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	pkg := map[string]string{"pg_dump": "postgresql-client", "pg_restore": "postgresql-client", "psql": "postgresql-client",
		"age-keygen": "age", "sqlite3": "sqlite3"}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			p := pkg[tool]
			if p == "" {
				p = tool
			}
			servicetest.Missing(t, tool, "not on PATH (Debian package "+p+")")
		}
	}
}

// result is what an operator sees of one script run.
type result struct {
	code           int
	stdout, stderr string
	syslog         string // what the script handed to logger(1)
}

// failureLine returns the one line a failed run printed on stderr, failing
// the test when the run succeeded or printed more or less than one line.
func (r result) failureLine(t *testing.T) string {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("exit 0; want a failure\nstdout:\n%s", r.stdout)
	}
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "notes-api-backup: FAILED: ") {
		t.Fatalf("stderr %q; want exactly one line starting with \"notes-api-backup: FAILED: \"", r.stderr)
	}
	return lines[0]
}

func (r result) mustSucceed(t *testing.T) result {
	t.Helper()
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q; want success\nstdout:\n%s", r.code, r.stderr, r.stdout)
	}
	return r
}

// run starts scripts/backup/<script> with only the environment given (plus
// PATH, HOME and a private TMPDIR), so nothing leaks in from the developer's
// shell. logger(1) is replaced by a fake that records what would reach syslog.
func run(t *testing.T, env map[string]string, script string, args ...string) result {
	t.Helper()
	dir := t.TempDir()
	fakeBin := filepath.Join(dir, "bin")
	syslogFile := filepath.Join(dir, "syslog")
	if err := os.Mkdir(fakeBin, 0o755); err != nil {
		t.Fatal(err)
	}
	fakeLogger := "#!/bin/sh\nprintf '%s\\n' \"$*\" >> " + syslogFile + "\n"
	path := fakeBin + ":" + os.Getenv("PATH")
	switch env[loggerMode] {
	case "fail": // as in a container without /dev/log
		fakeLogger = "#!/bin/sh\necho 'logger: socket /dev/log: No such file or directory' >&2\nexit 1\n"
	case "absent":
		path = pathWithout(t, "logger")
	}
	if err := os.WriteFile(filepath.Join(fakeBin, "logger"), []byte(fakeLogger), 0o755); err != nil { //nolint:gosec // a test executable
		t.Fatal(err)
	}
	vars := map[string]string{
		"PATH":   path,
		"HOME":   dir,
		"TMPDIR": dir,
		"LANG":   "C.UTF-8",
	}
	for k, v := range env {
		if k != loggerMode {
			vars[k] = v
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...) //nolint:gosec // the test's own scripts
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError) //nolint:errorlint // Run returns it unwrapped
		if !ok {
			t.Fatalf("run %s: %v", script, err)
		}
		r.code = ee.ExitCode()
	}
	if b, err := os.ReadFile(syslogFile); err == nil {
		r.syslog = string(b)
	}
	for _, out := range []string{r.stdout, r.stderr, r.syslog} {
		if strings.Contains(out, fakePassword) {
			t.Errorf("%s printed the database password:\n%s", script, out)
		}
	}
	return r
}

// loggerMode in run's env makes logger(1) "fail" or "absent" instead of
// recording; it is not passed to the script.
const loggerMode = "\x00logger"

// pathWithout returns a PATH of one directory linking every command of the
// current PATH but those named.
func pathWithout(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range filepath.SplitList(os.Getenv("PATH")) {
		entries, _ := os.ReadDir(p)
		for _, e := range entries {
			if slices.Contains(names, e.Name()) {
				continue
			}
			_ = os.Symlink(filepath.Join(p, e.Name()), filepath.Join(dir, e.Name())) // the first of a name wins, as in PATH
		}
	}
	return dir
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newPostgresDatabase creates a database of the test's own (the scripts back
// up and restore whole databases, which a schema cannot stand in for) and
// returns its URL, with fakePassword, and the admin connection.
func newPostgresDatabase(t *testing.T) (dbURL, name string, admin *sql.DB) {
	t.Helper()
	needTools(t, "pg_dump", "pg_restore", "psql")
	base := servicetest.URL(t, "TEST_DATABASE_URL", "PostgreSQL")
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal("open TEST_DATABASE_URL")
	}
	t.Cleanup(func() { _ = admin.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		servicetest.Missing(t, "PostgreSQL", "cannot connect to TEST_DATABASE_URL: "+err.Error())
	}
	name = "notes_bk_" + randomHex(6)
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal("TEST_DATABASE_URL is not a URL")
	}
	u.Path = "/" + name
	u.User = url.UserPassword(u.User.Username(), fakePassword)
	return u.String(), name, admin
}

func openDB(t *testing.T, o database.Options) *bun.DB {
	t.Helper()
	db, err := database.Open(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// api serves the real handler over db, as the service would: every
// resource mounted by the wiring (internal/resources), without a cache.
func api(t *testing.T, db *bun.DB) *httptest.Server {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	routes, _ := resources.All().Mount(resource.Deps{Config: config.Default(), DB: db, Cache: cache.None{}, Logger: logger})
	h := server.New(server.Options{Routes: routes, Logger: logger})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// writeNotes creates n notes over HTTP, with text that dumps must carry
// unchanged: quotes, backslashes, newlines, tabs, non-ASCII, long bodies.
func writeNotes(t *testing.T, srv *httptest.Server, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		body, _ := json.Marshal(map[string]string{
			"title": fmt.Sprintf("note %d: it's \"quoted\" \\ ünïcødé ✓", i),
			"body":  fmt.Sprintf("line 1\nline 2\ttab %d %s", i, strings.Repeat("x", i*37)),
		})
		resp, err := http.Post(srv.URL+"/v1/notes", "application/json", bytes.NewReader(body)) //nolint:noctx // test against httptest
		if err != nil {
			t.Fatal(err)
		}
		var note struct {
			ID string `json:"id"`
		}
		err = json.NewDecoder(resp.Body).Decode(&note)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || err != nil {
			t.Fatalf("POST /v1/notes: %d, %v", resp.StatusCode, err)
		}
		ids = append(ids, note.ID)
	}
	return ids
}

// listNotes reads every note back over HTTP.
func listNotes(t *testing.T, srv *httptest.Server) []string {
	t.Helper()
	var ids []string
	cursor := ""
	for {
		resp, err := http.Get(srv.URL + "/v1/notes?limit=100&cursor=" + url.QueryEscape(cursor)) //nolint:noctx // test against httptest
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			t.Fatalf("GET /v1/notes: %d, %v", resp.StatusCode, err)
		}
		for _, it := range page.Items {
			ids = append(ids, it.ID)
		}
		if page.NextCursor == "" {
			return ids
		}
		cursor = page.NextCursor
	}
}

// checksums returns, per table, a SHA-256 over every row (every column,
// formatted by the driver, rows sorted): two databases with the same
// checksums hold the same data.
func checksums(t *testing.T, db *bun.DB) map[string]string {
	t.Helper()
	ctx := t.Context()
	q := "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
	if database.Dialect(db) == "postgres" {
		q = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
	}
	var tables []string
	if err := db.NewRaw(q).Scan(ctx, &tables); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, table := range tables {
		rows, err := db.QueryContext(ctx, "SELECT * FROM "+table) //nolint:gosec // names from the catalog
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		var lines []string
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, fmt.Sprintf("%#v", vals))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		_ = rows.Close()
		slices.Sort(lines)
		h := sha256.New()
		for _, l := range lines {
			_, _ = io.WriteString(h, l+"\n")
		}
		out[table] = fmt.Sprintf("%d rows, sha256 %x", len(lines), h.Sum(nil))
	}
	return out
}

func sameChecksums(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	if len(before) == 0 {
		t.Fatal("no tables checksummed")
	}
	for table, sum := range before {
		if after[table] != sum {
			t.Errorf("%s: table %s is %q; before it was %q", what, table, after[table], sum)
		}
	}
	for table := range after {
		if _, ok := before[table]; !ok {
			t.Errorf("%s: table %s appeared", what, table)
		}
	}
}

// ageKey makes an age identity file and returns its path and public key.
func ageKey(t *testing.T) (identity, recipient string) {
	t.Helper()
	needTools(t, "age", "age-keygen")
	identity = filepath.Join(t.TempDir(), "key.txt")
	if out, err := exec.Command("age-keygen", "-o", identity).CombinedOutput(); err != nil { //nolint:gosec // test tool
		t.Fatalf("age-keygen: %v: %s", err, out)
	}
	pub, err := exec.Command("age-keygen", "-y", identity).Output() //nolint:gosec // test tool
	if err != nil {
		t.Fatal(err)
	}
	return identity, strings.TrimSpace(string(pub))
}

// manifest is the part of a backup's manifest the tests read.
type manifest struct {
	Format        int              `json:"format"`
	Name          string           `json:"name"`
	Kind          string           `json:"kind"`
	File          string           `json:"file"`
	Encrypted     bool             `json:"encrypted"`
	SHA256        string           `json:"sha256"`
	SizeBytes     int64            `json:"size_bytes"`
	SchemaVersion string           `json:"schema_version"`
	RowCounts     map[string]int64 `json:"row_counts"`
}

// onlyBackup returns the one backup in dir: its manifest path and content.
func onlyBackup(t *testing.T, dir string) (string, manifest) {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "*.manifest.json"))
	if len(paths) != 1 {
		t.Fatalf("manifests in %s: %v; want one", dir, paths)
	}
	b, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("manifest is not JSON: %v\n%s", err, b)
	}
	data, err := os.ReadFile(filepath.Join(dir, m.File))
	if err != nil {
		t.Fatalf("backup file named by the manifest: %v", err)
	}
	for _, f := range []string{paths[0], filepath.Join(dir, m.File)} {
		if st, err := os.Stat(f); err != nil || st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %v; want it readable by its owner only", f, st.Mode().Perm())
		}
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != m.SHA256 || int64(len(data)) != m.SizeBytes {
		t.Errorf("manifest sha256 %s size %d; the file has %x and %d", m.SHA256, m.SizeBytes, sum, len(data))
	}
	return paths[0], m
}

// latestMigration is the schema version a backup of a migrated database must
// carry: the newest migration's name as bun records it, its timestamp
// ("20261125000002"; api migrate status adds the comment, "_create_backups").
func latestMigration(t *testing.T, db *bun.DB) string {
	t.Helper()
	st, err := database.Status(t.Context(), db, resources.All().Migrations()...)
	if err != nil || len(st) == 0 {
		t.Fatalf("migration status: %v", err)
	}
	version, _, _ := strings.Cut(st[len(st)-1].Name, "_")
	return version
}

// copyBackup copies a backup and its manifest into a new directory, for a
// test to damage.
func copyBackup(t *testing.T, manifestPath string, m manifest) (dir, file, manifestCopy string) {
	t.Helper()
	dir = t.TempDir()
	for _, name := range []string{m.File, filepath.Base(manifestPath)} {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(manifestPath), name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir, filepath.Join(dir, m.File), filepath.Join(dir, filepath.Base(manifestPath))
}

// editManifest replaces the value of key on its line of the manifest.
func editManifest(t *testing.T, path, key, value string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	found := false
	for i, l := range lines {
		if strings.HasPrefix(l, `  "`+key+`": `) {
			comma := ""
			if strings.HasSuffix(l, ",") {
				comma = ","
			}
			lines[i] = `  "` + key + `": ` + value + comma
			found = true
		}
	}
	if !found {
		t.Fatalf("manifest has no %s", key)
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

package database

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/prodready/service/internal/health"
	"github.com/prodready/service/internal/servicetest"
)

func TestOpen_SQLite(t *testing.T) {
	tmp := t.TempDir()
	tests := []struct {
		name     string
		opts     Options
		wantFile string // where the database file must appear
	}{
		{
			name:     "sqlite path in missing nested directories",
			opts:     Options{SQLitePath: filepath.Join(tmp, "a", "b", "c", "notes.db")},
			wantFile: filepath.Join(tmp, "a", "b", "c", "notes.db"),
		},
		{
			name:     "sqlite:// url with an absolute path wins over SQLitePath",
			opts:     Options{URL: "sqlite://" + filepath.Join(tmp, "u", "notes.db"), SQLitePath: filepath.Join(tmp, "ignored.db")},
			wantFile: filepath.Join(tmp, "u", "notes.db"),
		},
		{
			name:     "file: url",
			opts:     Options{URL: "file:" + filepath.Join(tmp, "f", "notes.db")},
			wantFile: filepath.Join(tmp, "f", "notes.db"),
		},
		{
			name:     "file:// url naming localhost",
			opts:     Options{URL: "FILE://localhost" + filepath.Join(tmp, "l", "notes.db")},
			wantFile: filepath.Join(tmp, "l", "notes.db"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.BusyTimeout = 1234 * time.Millisecond
			tt.opts.MaxOpenConns = 7
			db := mustOpen(t, tt.opts)

			if got := Dialect(db); got != "sqlite" {
				t.Errorf("Dialect = %q; want sqlite", got)
			}
			if _, err := os.Stat(tt.wantFile); err != nil {
				t.Errorf("database file: %v", err)
			}
			if got := SQLiteFile(tt.opts); got != tt.wantFile {
				t.Errorf("SQLiteFile = %q; want %q, the file opened", got, tt.wantFile)
			}
			info, err := os.Stat(filepath.Dir(tt.wantFile))
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode().Perm()&0o007 != 0 {
				t.Errorf("data directory mode %v; want no access for others", info.Mode().Perm())
			}
			if got := db.Stats().MaxOpenConnections; got != 7 {
				t.Errorf("MaxOpenConnections = %d; want 7", got)
			}
			assertPragmas(t, db, 1234)
		})
	}
}

func TestOpen_SQLiteRelativeURL(t *testing.T) {
	t.Chdir(t.TempDir())
	db := mustOpen(t, Options{URL: "sqlite://data/notes.db"})
	if _, err := os.Stat(filepath.Join("data", "notes.db")); err != nil {
		t.Fatalf("relative sqlite url: %v", err)
	}
	assertPragmas(t, db, 0)
	if got := SQLiteFile(Options{URL: "sqlite://data/notes.db"}); got != "data/notes.db" {
		t.Errorf("SQLiteFile = %q; want data/notes.db", got)
	}
	if got := SQLiteFile(Options{URL: "postgres://db/notes", SQLitePath: "data/notes.db"}); got != "" {
		t.Errorf("SQLiteFile of a postgres url = %q; want empty", got)
	}
}

// assertPragmas checks the settings on several pooled connections at once:
// they are per connection, so a pool that set them only on its first
// connection would pass a single-connection check.
func assertPragmas(t *testing.T, db *bun.DB, busyMS int) {
	t.Helper()
	want := map[string]string{
		"journal_mode": "wal",
		"busy_timeout": strconv.Itoa(busyMS),
		"foreign_keys": "1",
		"synchronous":  "1", // NORMAL
	}
	var conns []bun.Conn
	for range 3 {
		c, err := db.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for i, c := range conns {
		for pragma, w := range want {
			var got string
			if err := c.QueryRowContext(t.Context(), "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatalf("PRAGMA %s: %v", pragma, err)
			}
			if got != w {
				t.Errorf("connection %d: PRAGMA %s = %q; want %q", i, pragma, got, w)
			}
		}
	}
	for _, c := range conns {
		_ = c.Close()
	}
}

func TestOpen_Errors(t *testing.T) {
	tmp := t.TempDir()
	aFile := filepath.Join(tmp, "file")
	if err := os.WriteFile(aFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	const secret = "hunter2-Secret"
	tests := []struct {
		name   string
		opts   Options
		want   string   // in the error
		hidden []string // never in the error
	}{
		{
			name: "nothing configured",
			opts: Options{},
			want: "no database configured",
		},
		{
			name:   "unsupported scheme names only the scheme",
			opts:   Options{URL: "mysql://admin:" + secret + "@db.internal:3306/notes"},
			want:   `unsupported database url scheme "mysql"`,
			hidden: []string{secret, "admin", "db.internal"},
		},
		{
			name:   "no scheme",
			opts:   Options{URL: "admin" + secret + "@db.internal/notes"},
			want:   "no valid scheme",
			hidden: []string{secret, "db.internal"},
		},
		{
			name: "sqlite url with query parameters",
			opts: Options{URL: "sqlite://" + filepath.Join(tmp, "q.db") + "?mode=ro"},
			want: "must not contain '?'",
		},
		{
			name: "in-memory sqlite",
			opts: Options{SQLitePath: ":memory:"},
			want: "in-memory sqlite is not supported",
		},
		{
			name: "sqlite data directory cannot be created",
			opts: Options{SQLitePath: filepath.Join(aFile, "sub", "notes.db")},
			want: "create sqlite data directory",
		},
		{
			name: "sqlite file is a directory",
			opts: Options{SQLitePath: tmp},
			want: "open database: sqlite file " + strconv.Quote(tmp) + ": ",
		},
		{
			name:   "postgres port closed",
			opts:   Options{URL: "postgres://postgres:" + secret + "@127.0.0.1:1/notes?sslmode=disable&connect_timeout=5"},
			want:   "open database: ",
			hidden: []string{secret},
		},
		{
			name:   "postgres password as query parameter",
			opts:   Options{URL: "postgresql://postgres@127.0.0.1:1/notes?password=" + secret + "&connect_timeout=5"},
			want:   "open database: ",
			hidden: []string{secret},
		},
		{
			name:   "postgres url that does not parse",
			opts:   Options{URL: "postgres://postgres:" + secret + "@127.0.0.1:notaport/notes"},
			want:   "invalid postgres url",
			hidden: []string{secret},
		},
		{
			name:   "postgres url pgx rejects",
			opts:   Options{URL: "postgres://postgres:" + secret + "@127.0.0.1:5432/notes?sslmode=bogus"},
			want:   "open database: ",
			hidden: []string{secret},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			db, err := Open(ctx, tt.opts)
			if err == nil {
				_ = db.Close()
				t.Fatal("Open succeeded; want an error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q; want it to contain %q", msg, tt.want)
			}
			for _, h := range tt.hidden {
				if strings.Contains(msg, h) {
					t.Errorf("error %q leaks %q", msg, h)
				}
			}
		})
	}
}

// TestRedact proves the masking itself, independent of what a driver prints:
// drivers change, and a leaked password in a log cannot be taken back.
func TestRedact(t *testing.T) {
	cause := context.DeadlineExceeded
	tests := []struct {
		name, url, msg string
		hidden         []string
	}{
		{"userinfo password", "postgres://u:pa55@h/db", "dial u:pa55@h failed", []string{"pa55"}},
		{"escaped password, decoded and raw", "postgres://u:p%40ss%2F1@h/db", "p@ss/1 and p%40ss%2F1", []string{"p@ss/1", "p%40ss%2F1"}},
		{"query passwords", "postgres://u@h/db?password=qpw1&sslpassword=kpw2", "qpw1 kpw2", []string{"qpw1", "kpw2"}},
		{"unparseable url withholds everything", "postgres://u:pa55@h:bad/db", "u:pa55@h:bad", []string{"pa55", "h:bad"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := redact(errors.Join(errors.New(tt.msg), cause), tt.url)
			for _, h := range tt.hidden {
				if strings.Contains(err.Error(), h) {
					t.Errorf("%q leaks %q", err.Error(), h)
				}
			}
		})
	}

	t.Run("keeps the cause and leaves password-free messages alone", func(t *testing.T) {
		err := redact(errors.Join(errors.New("u:pa55"), cause), "postgres://u:pa55@h/db")
		if !errors.Is(err, cause) {
			t.Errorf("errors.Is(%v, DeadlineExceeded) = false; want the cause kept", err)
		}
		plain := errors.New("no secret here")
		if got := redact(plain, "postgres://u@h/db"); got != plain { //nolint:errorlint // identity is the point: the same error comes back
			t.Errorf("redact without a password = %v; want the error unchanged", got)
		}
	})
}

func TestOpen_PostgreSQL(t *testing.T) {
	db := mustOpen(t, Options{URL: servicetest.PostgresURL(t), MaxOpenConns: 4, MaxIdleConns: 2, ConnMaxLifetime: time.Minute})
	if got := Dialect(db); got != "postgres" {
		t.Errorf("Dialect = %q; want postgres", got)
	}
	if got := db.Stats().MaxOpenConnections; got != 4 {
		t.Errorf("MaxOpenConnections = %d; want 4", got)
	}
}

func mustOpen(t *testing.T, o Options) *bun.DB {
	t.Helper()
	db, err := Open(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// discard is a logger for the checks under test.
func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestDiskCheck_Thresholds(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name       string
		warn, fail int
		want       health.Status
	}{
		{"plenty free", 0, 0, health.Pass},
		{"below the warning threshold", 100, 0, health.Warn},
		{"below the failure threshold", 100, 100, health.Fail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := health.NewRunner(nil, 0, time.Second, DiskCheck(dir, tt.warn, tt.fail, discard())).Run(context.Background())
			if got := r.Checks["disk:free"][0]; got.Status != tt.want || got.ObservedUnit != "percent" {
				t.Errorf("%+v, want %s", got, tt.want)
			}
		})
	}
	r := health.NewRunner(nil, 0, time.Second, DiskCheck(filepath.Join(dir, "missing"), 10, 5, discard())).Run(context.Background())
	if r.Checks["disk:free"][0].Status != health.Fail {
		t.Errorf("missing directory: %+v", r.Checks["disk:free"][0])
	}
}

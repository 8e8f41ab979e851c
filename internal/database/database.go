// Package database opens the service's SQL database, SQLite or PostgreSQL,
// behind one *bun.DB, and applies the embedded schema migrations (migrate.go).
package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" database/sql driver
)

// Options say which database to open and how to pool connections. The pool
// fields keep the meaning of the database/sql setters they feed: zero
// MaxOpenConns means unlimited, zero MaxIdleConns keeps no idle connection,
// zero ConnMaxLifetime and ConnMaxIdleTime keep connections forever.
type Options struct {
	// URL selects the database: postgres:// or postgresql:// for PostgreSQL,
	// sqlite:// or file: for SQLite at the URL's path, empty for SQLite at SQLitePath.
	URL        string
	SQLitePath string
	// BusyTimeout is how long a SQLite write waits for another writer's lock
	// before failing with "database is locked"; zero fails at once.
	BusyTimeout time.Duration
	// ConnectTimeout bounds opening one PostgreSQL connection: dial, TLS and
	// login. Without it a partition hangs a new connection for the kernel's
	// TCP timeout (minutes). A connect_timeout in the URL wins; zero: none.
	ConnectTimeout time.Duration
	// StatementTimeout is PostgreSQL's statement_timeout on every
	// connection: the server cancels a query running longer, and the
	// connection stays usable. It cannot help when the network is gone;
	// the caller's context deadline covers that. Zero sets none.
	StatementTimeout time.Duration
	MaxOpenConns     int
	MaxIdleConns     int
	ConnMaxLifetime  time.Duration
	ConnMaxIdleTime  time.Duration
}

// Open connects to the database o selects and checks it answers within ctx.
// Errors never contain the URL's password: the URL is a secret.
func Open(ctx context.Context, o Options) (*bun.DB, error) {
	db, where, err := open(o)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db.SetMaxOpenConns(o.MaxOpenConns)
	db.SetMaxIdleConns(o.MaxIdleConns)
	db.SetConnMaxLifetime(o.ConnMaxLifetime)
	db.SetConnMaxIdleTime(o.ConnMaxIdleTime)

	// sql.Open only validates its arguments; the first real connection, with
	// the SQLite pragmas or the PostgreSQL login, happens here.
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		if Dialect(db) == "postgres" {
			return nil, fmt.Errorf("open database: %w", redact(err, o.URL))
		}
		return nil, fmt.Errorf("open database: %s: %w", where, err)
	}
	return db, nil
}

// Dialect names the database behind db: "sqlite" or "postgres".
func Dialect(db *bun.DB) string {
	if db.Dialect().Name() == dialect.PG {
		return "postgres"
	}
	return "sqlite"
}

// open prepares the pool without connecting. where names a SQLite file for
// later errors; pgx errors already name the server, user and database.
func open(o Options) (db *bun.DB, where string, err error) {
	if o.URL == "" {
		return openSQLite(o.SQLitePath, o.BusyTimeout)
	}
	scheme, rest, ok := splitScheme(o.URL)
	if !ok {
		// Without a well-formed scheme there is nothing safe to quote back.
		return nil, "", errors.New("database url has no valid scheme; want postgres, postgresql, sqlite or file")
	}
	switch scheme {
	case "postgres", "postgresql":
		cfg, err := pgx.ParseConfig(o.URL)
		if err != nil {
			return nil, "", redact(err, o.URL)
		}
		if cfg.ConnectTimeout == 0 && o.ConnectTimeout > 0 {
			cfg.ConnectTimeout = o.ConnectTimeout // pgconn applies it to the whole connect
		}
		if _, set := cfg.RuntimeParams["statement_timeout"]; !set && o.StatementTimeout > 0 {
			cfg.RuntimeParams["statement_timeout"] = strconv.FormatInt(o.StatementTimeout.Milliseconds(), 10)
		}
		return bun.NewDB(stdlib.OpenDB(*cfg), pgdialect.New()), "", nil
	case "sqlite", "file":
		return openSQLite(sqliteURLPath(scheme, rest), o.BusyTimeout)
	default:
		return nil, "", fmt.Errorf("unsupported database url scheme %q; want postgres, postgresql, sqlite or file", scheme)
	}
}

// SQLiteFile returns the path of the SQLite file o selects (from a sqlite:
// or file: URL, or SQLitePath when URL is empty), or "" when o selects
// PostgreSQL. The disk check watches the directory holding it.
func SQLiteFile(o Options) string {
	if o.URL == "" {
		return o.SQLitePath
	}
	scheme, rest, ok := splitScheme(o.URL)
	if !ok || (scheme != "sqlite" && scheme != "file") {
		return ""
	}
	return sqliteURLPath(scheme, rest)
}

// sqliteURLPath is the file path in a sqlite: or file: URL:
// sqlite:///var/lib/notes.db and file:/var/lib/notes.db are absolute,
// sqlite://data/notes.db and file:data/notes.db relative.
func sqliteURLPath(scheme, rest string) string {
	path := strings.TrimPrefix(rest, "//")
	if scheme == "file" && strings.HasPrefix(path, "localhost/") {
		path = strings.TrimPrefix(path, "localhost")
	}
	return path
}

// splitScheme returns the lowercased RFC 3986 scheme of raw and what follows
// its colon. It does not use url.Parse, whose errors quote the whole URL.
func splitScheme(raw string) (scheme, rest string, ok bool) {
	scheme, rest, found := strings.Cut(raw, ":")
	if !found || scheme == "" {
		return "", "", false
	}
	for i, c := range scheme {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return "", "", false
		}
	}
	return strings.ToLower(scheme), rest, true
}

func openSQLite(path string, busyTimeout time.Duration) (db *bun.DB, where string, err error) {
	if path == "" {
		return nil, "", errors.New("no database configured: set a database url or a sqlite path")
	}
	where = fmt.Sprintf("sqlite file %q", path)
	if path == ":memory:" {
		// Every pooled connection would get its own, empty database.
		return nil, "", errors.New("in-memory sqlite is not supported: use a file, in tests one under t.TempDir()")
	}
	// The driver reads settings from the DSN query, so a '?' in the path would
	// be taken for one; options come from Options, never from the path.
	if strings.Contains(path, "?") {
		return nil, "", fmt.Errorf("%s: path must not contain '?'; set options in the config instead", where)
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, "", fmt.Errorf("create sqlite data directory: %w", err)
		}
	}

	// The driver runs these on every new pooled connection, so each one
	// agrees. busy_timeout comes first so the others wait for locks too.
	//   journal_mode(WAL): readers do not block the writer, nor it them.
	//   foreign_keys(1): SQLite leaves them off by default.
	//   synchronous(NORMAL): durable at WAL checkpoints; safe with WAL, far fewer fsyncs.
	// _txlock=immediate takes the write lock at BEGIN, so two transactions
	// that read then write wait on busy_timeout instead of deadlocking
	// with an immediate SQLITE_BUSY.
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(busyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")

	sqldb, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", where, err)
	}
	return bun.NewDB(sqldb, sqlitedialect.New()), where, nil
}

// redact hides the password of rawURL wherever err's message quotes it.
// Drivers try not to print passwords, but a malformed URL can defeat their
// best-effort masking, and a leaked secret in a log is hard to take back.
func redact(err error, rawURL string) error {
	u, perr := url.Parse(rawURL)
	if perr != nil {
		// Unparseable, so the password cannot be located: say nothing of the
		// driver's message, which likely quotes the URL.
		return errors.New("invalid postgres url (details withheld: it may contain a password)")
	}
	var secrets []string
	if p, ok := u.User.Password(); ok {
		secrets = append(secrets, p)
	}
	// pgx also reads passwords from these query parameters.
	q := u.Query()
	secrets = append(secrets, q["password"]...)
	secrets = append(secrets, q["sslpassword"]...)

	var pairs []string
	for _, s := range secrets {
		if s == "" {
			continue
		}
		// A message may quote the password decoded or as it was escaped in the URL.
		for _, form := range []string{s, url.QueryEscape(s), url.PathEscape(s)} {
			pairs = append(pairs, form, "xxxxx")
		}
	}
	if len(pairs) == 0 {
		return err
	}
	return &redactedError{err: err, msg: strings.NewReplacer(pairs...).Replace(err.Error())}
}

// redactedError keeps the cause for errors.Is and errors.As but prints the
// masked message.
type redactedError struct {
	err error
	msg string
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

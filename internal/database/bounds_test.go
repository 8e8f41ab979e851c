package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/prodready/service/internal/servicetest"
)

// viaProxy points a PostgreSQL URL at a proxy in front of its server.
func viaProxy(t *testing.T, rawURL string) (string, *servicetest.Proxy) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal("TEST_DATABASE_URL is not a valid URL")
	}
	p := servicetest.NewProxy(t, u.Host)
	u.Host = p.Addr()
	return u.String(), p
}

// TestOpen_PostgreSQLStatementTimeout: PostgreSQL itself stops a query
// running past database.statement_timeout; the error counts as unavailable
// (a 503, not a 500) and the connection stays usable.
func TestOpen_PostgreSQLStatementTimeout(t *testing.T) {
	db := mustOpen(t, Options{URL: servicetest.PostgresURL(t), StatementTimeout: 100 * time.Millisecond, MaxOpenConns: 1})
	var setting string
	if err := db.NewRaw("SHOW statement_timeout").Scan(t.Context(), &setting); err != nil || setting != "100ms" {
		t.Fatalf("statement_timeout = %q, %v; want 100ms", setting, err)
	}
	_, err := db.ExecContext(t.Context(), "SELECT pg_sleep(5)")
	if err == nil || !Unavailable(err) {
		t.Fatalf("a 5 s query under a 100 ms statement timeout: %v; want an unavailable error", err)
	}
	var one int
	if err := db.NewRaw("SELECT 1").Scan(t.Context(), &one); err != nil || one != 1 {
		t.Errorf("the only pooled connection is unusable after the timeout: %v", err)
	}
}

// TestOpen_PostgreSQLConnectTimeout: a server that accepts the TCP
// connection and never answers (a blackhole) fails Open after
// database.connect_timeout, not after the caller's much longer deadline.
func TestOpen_PostgreSQLConnectTimeout(t *testing.T) {
	u, p := viaProxy(t, servicetest.PostgresURL(t))
	p.Blackhole()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, err := Open(ctx, Options{URL: u, ConnectTimeout: 200 * time.Millisecond})
	if err == nil {
		t.Fatal("Open through a blackhole succeeded")
	}
	if ctx.Err() != nil {
		t.Fatalf("Open waited for the caller's deadline: %v", err)
	}
	if !Unavailable(err) {
		t.Errorf("connect timeout is not classed unavailable: %v", err)
	}
}

// TestOpen_PostgreSQLURLSettingsWin: connect_timeout and statement_timeout
// given in the URL are kept; the config's values fill only what it leaves out.
func TestOpen_PostgreSQLURLSettingsWin(t *testing.T) {
	u, err := url.Parse(servicetest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("statement_timeout", "250")
	u.RawQuery = q.Encode()
	db := mustOpen(t, Options{URL: u.String(), StatementTimeout: time.Second, ConnMaxIdleTime: time.Minute})
	var setting string
	if err := db.NewRaw("SHOW statement_timeout").Scan(t.Context(), &setting); err != nil || setting != "250ms" {
		t.Errorf("statement_timeout = %q, %v; want the URL's 250ms", setting, err)
	}
}

// TestUnavailable classes real errors from both databases and the network:
// what passes on its own is unavailable (a 503), a bug is not (a 500).
func TestUnavailable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "u.db")
	db := mustOpen(t, Options{SQLitePath: file})
	_, sqlErr := db.ExecContext(t.Context(), "SELECT * FROM no_such_table")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"deadline", fmt.Errorf("get note: %w", context.DeadlineExceeded), true},
		{"client went away", fmt.Errorf("get note: %w", context.Canceled), false},
		{"a bug in the SQL", sqlErr, false},
		{"anything else", errors.New("boom"), false},
		{"PostgreSQL refused the connection", pgConnectRefused(t), true},
		{"a socket error", dialRefused(t), true},
		{"SQLite busy: another writer holds the lock", sqliteBusy(t, file), true},
		{"a pooled PostgreSQL connection closed under the query", pgConnClosed(t), true},
		{"a closed network connection", fmt.Errorf("read: %w", net.ErrClosed), true},
		{"the network cut under a PostgreSQL query (a failover, a reset)", pgCutMidQuery(t), true},
		{"the server closed the connection mid-reply (pgx: unexpected EOF)", fmt.Errorf("list notes: %w", io.ErrUnexpectedEOF), true},
		{"SQLite's disk full", sqliteFull(t), true},
		{"PostgreSQL's disk full (53100)", fmt.Errorf("create note: %w", &pgconn.PgError{Code: "53100"}), true},
		{"PostgreSQL out of memory (53200)", &pgconn.PgError{Code: "53200"}, true},
		{"a PostgreSQL I/O error (58030)", &pgconn.PgError{Code: "58030"}, true},
		{"PostgreSQL's lock_timeout (55P03)", &pgconn.PgError{Code: "55P03"}, true},
		{"a PostgreSQL constraint violation: the request's (23505)", &pgconn.PgError{Code: "23505"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Unavailable(tt.err); got != tt.want {
				t.Errorf("Unavailable(%v) = %v; want %v", tt.err, got, tt.want)
			}
		})
	}
}

// pgCutMidQuery is what a query gets when the connection under it is cut
// while PostgreSQL works on it: through a proxy that drops every connection,
// as a failover or a reset between the two would.
func pgCutMidQuery(t *testing.T) error {
	u, err := url.Parse(servicetest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	p := servicetest.NewProxy(t, u.Host)
	u.Host = p.Addr()
	db := mustOpen(t, Options{URL: u.String(), StatementTimeout: 10 * time.Second})
	done := make(chan error, 1)
	go func() {
		_, err := db.ExecContext(t.Context(), "SELECT pg_sleep(5)")
		done <- err
	}()
	time.Sleep(300 * time.Millisecond) // the query is on the wire
	p.Cut()
	err = <-done
	if err == nil {
		t.Fatal("a query survived its connection being cut")
	}
	return fmt.Errorf("list notes: %w", err)
}

// sqliteFull is SQLite's answer when its file cannot grow: a database
// capped at a few pages stands in for a full disk.
func sqliteFull(t *testing.T) error {
	db := mustOpen(t, Options{SQLitePath: filepath.Join(t.TempDir(), "full.db")})
	ctx := t.Context()
	conn, err := db.Conn(ctx) // the page cap is the connection's
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "CREATE TABLE big (x blob)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA max_page_count = 8"); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if _, err := conn.ExecContext(ctx, "INSERT INTO big VALUES (zeroblob(4096))"); err != nil {
			return fmt.Errorf("create note: %w", err)
		}
	}
	t.Fatal("100 pages went into a database capped at 8")
	return nil
}

// pgConnectRefused is what pgx returns when nothing listens at the address.
func pgConnectRefused(t *testing.T) error {
	_, err := pgconn.Connect(t.Context(), "postgres://postgres@"+servicetest.ClosedPort(t)+"/x?connect_timeout=5")
	if _, ok := errors.AsType[*pgconn.ConnectError](err); !ok {
		t.Fatalf("connect to a closed port: %v; want a *pgconn.ConnectError", err)
	}
	return err
}

// dialRefused is a plain socket error (*net.OpError), as a driver wraps it.
func dialRefused(t *testing.T) error {
	var d net.Dialer
	c, err := d.DialContext(t.Context(), "tcp", servicetest.ClosedPort(t))
	if err == nil {
		_ = c.Close()
		t.Fatal("dial to a closed port succeeded")
	}
	return fmt.Errorf("query: %w", err)
}

// sqliteBusy is SQLite's answer to a second writer while the first holds
// the write lock and the second will not wait (busy_timeout 0).
func sqliteBusy(t *testing.T, file string) error {
	holder := mustOpen(t, Options{SQLitePath: file})
	tx, err := holder.BeginTx(t.Context(), &sql.TxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(t.Context(), "CREATE TABLE held (x int)"); err != nil {
		t.Fatal(err)
	}
	impatient, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer impatient.Close()
	_, err = impatient.ExecContext(t.Context(), "CREATE TABLE other (x int)")
	if err == nil {
		t.Fatal("a second writer got the lock the first holds")
	}
	return err
}

// pgConnClosed is the error of a query on a connection that was closed.
func pgConnClosed(t *testing.T) error {
	c, err := pgconn.Connect(t.Context(), servicetest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close(t.Context())
	_, err = c.Exec(t.Context(), "SELECT 1").ReadAll()
	if err == nil {
		t.Fatal("a query on a closed connection succeeded")
	}
	return err
}

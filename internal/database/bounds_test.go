package database

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"testing"
	"time"

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

func TestUnavailable(t *testing.T) {
	db := mustOpen(t, Options{SQLitePath: filepath.Join(t.TempDir(), "u.db")})
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Unavailable(tt.err); got != tt.want {
				t.Errorf("Unavailable(%v) = %v; want %v", tt.err, got, tt.want)
			}
		})
	}
}

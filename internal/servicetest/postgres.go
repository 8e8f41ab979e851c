package servicetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// PostgresURL returns a URL for the PostgreSQL database in TEST_DATABASE_URL
// whose search_path is a new, empty schema of this test's own, so tests and
// packages running in parallel never see each other's tables. The schema is
// dropped when the test ends. The test skips (or fails under
// REQUIRE_SERVICES=1) when TEST_DATABASE_URL is unset or unreachable.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := URL(t, "TEST_DATABASE_URL", "PostgreSQL")
	u, err := url.Parse(base)
	if err != nil {
		// url.Parse errors quote the URL, password included; keep it out of logs.
		t.Fatal("TEST_DATABASE_URL is not a valid URL")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open TEST_DATABASE_URL: %v", err)
	}
	if err := admin.PingContext(ctx); err != nil {
		_ = admin.Close()
		Missing(t, "PostgreSQL", "cannot connect to TEST_DATABASE_URL: "+err.Error())
	}

	// 64 random bits keep concurrent test processes apart; the prefix makes
	// schemas leaked by a killed run easy to find and drop.
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails, per crypto/rand
	schema := "test_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		_ = admin.Close()
		t.Fatalf("create test schema: %v", err)
	}
	t.Cleanup(func() {
		// Runs after cleanups registered later, such as closing the test's own pool.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop test schema %s: %v", schema, err)
		}
		_ = admin.Close()
	})

	// pgx sends unknown URL parameters to the server as session settings.
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// HoldInSession runs stmt in a transaction of a session of its own on the
// PostgreSQL at dbURL, as another client holding a lock would (LOCK TABLE,
// SELECT ... FOR UPDATE, an advisory lock), and returns that session, to
// look at from the side, and release, which ends the transaction. The test
// releases it at its end if it has not.
func HoldInSession(t testing.TB, dbURL, stmt string, args ...any) (session *sql.DB, release func()) {
	t.Helper()
	session, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := session.BeginTx(context.Background(), nil)
	if err != nil {
		_ = session.Close()
		t.Fatal(err)
	}
	release = func() { _ = tx.Rollback() }
	t.Cleanup(func() { release(); _ = session.Close() })
	if _, err := tx.ExecContext(context.Background(), stmt, args...); err != nil {
		t.Fatalf("hold %q: %v", stmt, err)
	}
	return session, release
}

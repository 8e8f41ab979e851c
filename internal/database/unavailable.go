package database

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// transientPgCodes are PostgreSQL errors that pass on their own. Whole
// classes count too (Unavailable): 08 connection exception, 53
// insufficient resources (disk full, out of memory, too many connections)
// and 58 system error (an I/O error on the server).
var transientPgCodes = map[string]bool{
	"57014": true, // query_canceled: statement_timeout fired
	"55P03": true, // lock_not_available: lock_timeout fired (a lock held too long)
	"57P01": true, // admin_shutdown
	"57P02": true, // crash_shutdown
	"57P03": true, // cannot_connect_now: starting up
	"40001": true, // serialization_failure: retry
	"40P01": true, // deadlock_detected: retry
}

// Unavailable reports whether err means the database could not do the work
// in time or at all (unreachable, partitioned, overloaded, shutting down,
// locked, out of disk), rather than that the request or the code was wrong. Such an error
// is the dependency's, and passes: callers answer 503 with Retry-After, and
// the next request may well succeed.
//
// A context canceled by the caller (a client that went away) is not
// unavailability: it says nothing about the database.
func Unavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, driver.ErrBadConn) || pgconn.Timeout(err) {
		return true
	}
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return true
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch pe.Code[:min(2, len(pe.Code))] {
		case "08", "53", "58":
			return true
		}
		return transientPgCodes[pe.Code]
	}
	if se, ok := errors.AsType[*sqlite.Error](err); ok {
		switch se.Code() & 0xff { // primary result code; extended codes add high bits
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED,
			// The disk is full, or its I/O failed: the operator's to fix (the
			// disk check on /status says so), not a bug in the request.
			sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR:
			return true
		}
		return false
	}
	// A pooled connection the server or the network closed mid-query: a
	// failover, a restart, a killed backend or a reset between them. pgx
	// reports the cut as an unexpected EOF of the reply it was reading.
	if errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		pgconn.SafeToRetry(err) || strings.Contains(err.Error(), "conn closed") || strings.HasSuffix(err.Error(), "unexpected EOF") {
		return true
	}
	return false
}

// TimedOut reports whether err, one Unavailable accepts, is the database
// not answering in time (a deadline, PostgreSQL's statement_timeout or
// lock_timeout, a network timeout, SQLite busy or locked past its busy
// timeout) rather than refusing or failing the work (a full disk, an I/O
// error, a shutdown): a client's 503 says which.
func TimedOut(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return true
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return true
	}
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pe.Code == "57014" || pe.Code == "55P03" // query_canceled (statement_timeout), lock_not_available (lock_timeout)
	}
	if se, ok := errors.AsType[*sqlite.Error](err); ok {
		c := se.Code() & 0xff
		return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
	}
	return false
}

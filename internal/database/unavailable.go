package database

import (
	"context"
	"database/sql/driver"
	"errors"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// transientPgCodes are PostgreSQL errors that pass on their own.
var transientPgCodes = map[string]bool{
	"57014": true, // query_canceled: statement_timeout fired
	"57P01": true, // admin_shutdown
	"57P02": true, // crash_shutdown
	"57P03": true, // cannot_connect_now: starting up
	"53300": true, // too_many_connections
	"40001": true, // serialization_failure: retry
	"40P01": true, // deadlock_detected: retry
}

// Unavailable reports whether err means the database could not do the work
// in time or at all (unreachable, partitioned, overloaded, shutting down,
// locked), rather than that the request or the code was wrong. Such an error
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
		return strings.HasPrefix(pe.Code, "08") || transientPgCodes[pe.Code] // class 08: connection exception
	}
	if se, ok := errors.AsType[*sqlite.Error](err); ok {
		switch se.Code() & 0xff { // primary result code; extended codes add high bits
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true
		}
		return false
	}
	// A pooled connection the server or the network closed mid-query.
	if errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "conn closed") {
		return true
	}
	return false
}

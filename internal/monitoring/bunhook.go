package monitoring

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"strings"

	"github.com/newrelic/go-agent/v3/newrelic"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// QueryHook returns a bun query hook that makes every query run within a
// transaction a datastore segment: product (Postgres or SQLite), operation,
// table and the query with every literal replaced by ? (bun sends queries
// with the values inlined, and a note's text must not reach New Relic).
// Errors other than "no rows" are noticed on the transaction. bun's own
// extra/bunrelic does the same but is not served by the module registry
// here; this is small enough to own. Add it with db.AddQueryHook.
func (a *Agent) QueryHook(db *bun.DB) bun.QueryHook {
	product := newrelic.DatastoreSQLite
	if db.Dialect().Name() == dialect.PG {
		product = newrelic.DatastorePostgres
	}
	return queryHook{product: product}
}

type queryHook struct{ product newrelic.DatastoreProduct }

type segmentKey struct{}

func (h queryHook) BeforeQuery(ctx context.Context, e *bun.QueryEvent) context.Context {
	txn := newrelic.FromContext(ctx)
	if txn == nil {
		return ctx
	}
	seg := &newrelic.DatastoreSegment{
		StartTime:          txn.StartSegmentNow(),
		Product:            h.product,
		Operation:          strings.ToLower(e.Operation()),
		Collection:         tableName(e),
		ParameterizedQuery: obfuscate(e.Query),
	}
	return context.WithValue(ctx, segmentKey{}, seg)
}

func (h queryHook) AfterQuery(ctx context.Context, e *bun.QueryEvent) {
	seg, ok := ctx.Value(segmentKey{}).(*newrelic.DatastoreSegment)
	if !ok {
		return
	}
	seg.End()
	// No rows is an answer; a cancelled context is the client leaving.
	if e.Err != nil && !errors.Is(e.Err, sql.ErrNoRows) && !errors.Is(e.Err, context.Canceled) {
		if txn := newrelic.FromContext(ctx); txn != nil {
			txn.NoticeError(e.Err)
		}
	}
}

// tableName is the query's table, when bun knows it (query builders do; raw
// SQL does not).
func tableName(e *bun.QueryEvent) string {
	if q, ok := e.IQuery.(interface{ GetTableName() string }); ok {
		return strings.Trim(q.GetTableName(), `"`)
	}
	return ""
}

// literals are SQL string and number literals: quoted strings (with ”
// escapes, and the E” and X” forms) and numbers that stand alone, not the
// digits inside an identifier such as t1.
var literals = regexp.MustCompile(`(?i)\b[ex]?'(?:[^']|'')*'|'(?:[^']|'')*'|\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b`)

// obfuscate replaces the literals of query with ?, as New Relic's
// agents do before sending a query anywhere.
func obfuscate(query string) string { return literals.ReplaceAllString(query, "?") }

package monitoring

import (
	"slices"

	"github.com/gin-gonic/gin"
	"github.com/newrelic/go-agent/v3/integrations/nrgin"
	"github.com/newrelic/go-agent/v3/newrelic"

	"github.com/prodready/service/internal/logging"
)

// Middleware returns the handlers that make each request a web transaction
// named by its route template ("GET /v1/notes/:id"), with the request ID as
// the request_id attribute, and that put the transaction in the request's
// context, where the query hook, the Redis hook, the log handler and the
// Notice methods find it. Install it after the request ID middleware.
//
// skip lists route templates that are not transactions: probes polled every
// few seconds would drown the real traffic in APM. It returns nil when
// monitoring is off.
func (a *Agent) Middleware(skip ...string) []gin.HandlerFunc {
	if !a.On() {
		return nil
	}
	monitored := func(c *gin.Context) bool { return !slices.Contains(skip, c.FullPath()) }
	return []gin.HandlerFunc{
		nrgin.Middleware(a.app, nrgin.WithFilter(monitored)),
		func(c *gin.Context) {
			txn := nrgin.Transaction(c)
			if txn == nil { // skipped
				c.Next()
				return
			}
			ctx := c.Request.Context()
			if c.FullPath() == "" { // nrgin would name it "GET " (no template)
				txn.SetName(c.Request.Method + " (unmatched route)")
			}
			txn.AddAttribute("request_id", logging.RequestID(ctx))
			c.Request = c.Request.WithContext(newrelic.NewContext(ctx, txn))
			c.Next()
			if c.Writer.Status() >= 500 {
				a.failed.add()
			}
		},
	}
}

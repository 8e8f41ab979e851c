package server

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"
)

// The server reports failures through three hooks that do nothing until
// cmd/api assigns a real reporter (internal/alert) at startup. The server
// does not import the reporter: it only says what happened, and a test can
// watch the hooks without an SMTP server.
//
// The hooks run on the request's goroutine: an implementation must return
// quickly (queue, don't send) and must not panic. Tests that replace them
// must not run in parallel with others.

// ErrorReport describes a request answered with a server error that was not
// a panic (panics go to ReportPanic).
type ErrorReport struct {
	Status int
	// Err is the last error a handler recorded with c.Error; nil when the
	// handler wrote the 500 without recording one.
	Err error
	RequestInfo
}

// ReportError is called once for every request answered with 500, or with
// another 5xx status when a handler recorded an error with c.Error. A 503
// written on purpose without an error (a readiness probe saying "not
// ready", load shedding) is an answer, not a failure, and is not reported.
var ReportError = func(ctx context.Context, e ErrorReport) {}

// AlertScope is called when a request starts. The context it returns
// replaces the request's, and end is called when the request is done unless
// it panicked. The reporter uses it to put the error records logged during a
// request into that request's alert, rather than alerting twice.
var AlertScope = func(ctx context.Context) (_ context.Context, end func()) { return ctx, func() {} }

// reportErrors calls ReportError for server errors. It sits inside
// recovery: a panic skips the code after c.Next, so a panic is reported once,
// by recovery, and not again here as a 500.
func reportErrors() gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, end := AlertScope(c.Request.Context())
		if ctx != c.Request.Context() {
			c.Request = c.Request.WithContext(ctx)
		}
		c.Next()
		if status := c.Writer.Status(); status == http.StatusInternalServerError ||
			(status >= 500 && len(c.Errors) > 0) {
			e := ErrorReport{Status: status, RequestInfo: requestInfo(c)}
			if last := c.Errors.Last(); last != nil {
				e.Err = last.Err
			}
			ReportError(c.Request.Context(), e)
		}
		end()
	}
}

package server

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"
)

// Alerts is how the server reports failures: recovered panics, unhandled
// server errors, and a per-request scope. cmd/api adapts the e-mail
// reporter (internal/alert) to it; the server does not import the reporter,
// it only says what happened, and a test can watch it without an SMTP
// server.
//
// The methods run on the request's goroutine: an implementation must
// return quickly (queue, don't send), must not panic, and must be safe for
// concurrent requests.
type Alerts interface {
	// Scope is called when a request starts. The context it returns
	// replaces the request's, and end is called when the request is done
	// unless it panicked. The reporter uses it to put the error records
	// logged during a request into that request's alert, rather than
	// alerting twice.
	Scope(ctx context.Context) (_ context.Context, end func())
	// ReportPanic is called once for every recovered panic, after the panic
	// is logged and the 500 is written.
	ReportPanic(ctx context.Context, p PanicReport)
	// ReportError is called once for every request answered with 500, or
	// with another 5xx status when a handler recorded an error with
	// c.Error. A 503 written on purpose without an error (a readiness probe
	// saying "not ready", load shedding) is an answer, not a failure, and
	// is not reported.
	ReportError(ctx context.Context, e ErrorReport)
}

// NoAlerts reports nothing; it stands in when Options.Alerts is nil.
type NoAlerts struct{}

// Scope returns ctx unchanged.
func (NoAlerts) Scope(ctx context.Context) (context.Context, func()) { return ctx, func() {} }

// ReportPanic does nothing.
func (NoAlerts) ReportPanic(context.Context, PanicReport) {}

// ReportError does nothing.
func (NoAlerts) ReportError(context.Context, ErrorReport) {}

// ErrorReport describes a request answered with a server error that was not
// a panic (panics go to Alerts.ReportPanic).
type ErrorReport struct {
	Status int
	// Err is the last error a handler recorded with c.Error; nil when the
	// handler wrote the 500 without recording one.
	Err error
	RequestInfo
}

// reportErrors opens the alert scope and reports server errors. It sits
// inside recovery: a panic skips the code after c.Next, so a panic is
// reported once, by recovery, and not again here as a 500.
func reportErrors(alerts Alerts) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, end := alerts.Scope(c.Request.Context())
		if ctx != c.Request.Context() {
			c.Request = c.Request.WithContext(ctx)
		}
		c.Next()
		// The status route's 500 is its answer ("a check fails"), not a
		// failure of the route: mailing it would send one alert per monitor
		// poll during an outage, through the SMTP relay that may be the
		// failing check. Check state changes are mailed instead (cmd/api).
		if c.FullPath() == statusPath && len(c.Errors) == 0 {
			end()
			return
		}
		if status := c.Writer.Status(); status == http.StatusInternalServerError ||
			(status >= 500 && len(c.Errors) > 0) {
			e := ErrorReport{Status: status, RequestInfo: requestInfo(c)}
			if last := c.Errors.Last(); last != nil {
				e.Err = last.Err
			}
			alerts.ReportError(c.Request.Context(), e)
		}
		end()
	}
}

package monitoring

import (
	"context"
	"fmt"
	"net/http"

	"github.com/newrelic/go-agent/v3/newrelic"
)

// NoticePanic records a recovered panic as an error of the request's
// transaction. Call it from the deferred function that recovered, where the
// stack still holds the panicking frames: the agent takes its stack trace
// there.
func (a *Agent) NoticePanic(ctx context.Context, value any) {
	txn := newrelic.FromContext(ctx)
	if txn == nil {
		return
	}
	txn.NoticeError(newrelic.Error{
		Message:    fmt.Sprint(value),
		Class:      "panic",
		Attributes: map[string]any{"http.statusCode": http.StatusInternalServerError},
		Stack:      newrelic.NewStackTrace(),
	})
}

// NoticeError records a request answered with a server error: err is what
// the handler recorded, or nil when it wrote the status without one.
func (a *Agent) NoticeError(ctx context.Context, status int, err error) {
	txn := newrelic.FromContext(ctx)
	if txn == nil {
		return
	}
	if err == nil {
		err = newrelic.Error{Message: fmt.Sprintf("%d %s", status, http.StatusText(status)), Class: fmt.Sprintf("HTTP %d", status)}
	}
	txn.NoticeError(err)
}

package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prodready/service/internal/health"
	"github.com/prodready/service/internal/server"
)

// TestStatusRouteFailureIsNotReported: /status answering 500 because a check
// fails is the route doing its job; polling it during an outage must not
// turn every poll into an alert.
func TestStatusRouteFailureIsNotReported(t *testing.T) {
	t.Parallel()
	failing := health.Check{Name: "smtp:responseTime", Run: func(context.Context) health.Result {
		return health.Result{Status: health.Fail, Output: "no answer"}
	}}
	h := health.NewHandler(health.NewRunner(nil, 0, time.Second, failing), health.HandlerOptions{Tokens: []string{"tok"}})
	alerts := &alertCalls{}
	e := server.New(server.Options{Health: h, Alerts: alerts})
	for range 5 {
		req := httptest.NewRequest(http.MethodGet, "/status", nil)
		req.Header.Set("Authorization", "Bearer tok")
		if w := serve(e, req); w.Code != http.StatusInternalServerError {
			t.Fatalf("status %d, want the failing check's 500", w.Code)
		}
	}
	alerts.mu.Lock()
	defer alerts.mu.Unlock()
	if len(alerts.errors) != 0 {
		t.Errorf("%d polls of a failing /status were reported as server errors", len(alerts.errors))
	}
	if alerts.begun != 5 || alerts.ended != 5 {
		t.Errorf("alert scopes begun %d, ended %d; want 5 each", alerts.begun, alerts.ended)
	}
}

package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
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

// TestStatusRouteAnswersEveryMethodAsHealthJSON: whatever the method (the
// usual ones, WebDAV's, TRACE, a made-up token), /status answers its own
// 405 as application/health+json with Allow: GET, HEAD, so a monitor
// configured with the wrong method still gets a body it parses. Found by
// FuzzHTTP (TRACE gave the generic problem+json).
func TestStatusRouteAnswersEveryMethodAsHealthJSON(t *testing.T) {
	t.Parallel()
	h := health.NewHandler(health.NewRunner(nil, 0, time.Second), health.HandlerOptions{Tokens: []string{"tok"}})
	e := server.New(server.Options{Health: h})
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions,
		http.MethodTrace, "PROPFIND", "MKCOL", "FOO"} {
		req := httptest.NewRequest(m, "/status", nil)
		req.Header.Set("Authorization", "Bearer tok")
		w := serve(e, req)
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Content-Type") != "application/health+json" ||
			w.Header().Get("Allow") != "GET, HEAD" || !strings.Contains(w.Body.String(), `"status":"fail"`) {
			t.Errorf("%s /status: %d %q Allow %q %s; want a 405 health+json allowing GET, HEAD",
				m, w.Code, w.Header().Get("Content-Type"), w.Header().Get("Allow"), w.Body)
		}
	}
	// Other paths keep the generic problem.
	w := serve(e, httptest.NewRequest(http.MethodTrace, "/livez", nil))
	if w.Code != http.StatusMethodNotAllowed || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/problem+json") {
		t.Errorf("TRACE /livez: %d %q, want a 405 problem", w.Code, w.Header().Get("Content-Type"))
	}
}

// TestStatusRouteRefusalsAreHealthJSON: what the server refuses before any
// route runs (a malformed query string, a compressed body, one over the
// limit) is still health+json on /status, with the reason, and the same
// problem elsewhere. Found by FuzzHTTP (GET /status?% was a problem).
func TestStatusRouteRefusalsAreHealthJSON(t *testing.T) {
	t.Parallel()
	h := health.NewHandler(health.NewRunner(nil, 0, time.Second), health.HandlerOptions{Tokens: []string{"tok"}})
	e := server.New(server.Options{Health: h, MaxBodyBytes: 16})
	for _, tt := range []struct {
		name, method, query, encoding, body string
		status                              int
		output                              string
	}{
		{"malformed query", http.MethodGet, "%", "", "", http.StatusBadRequest, "the query string is malformed"},
		{"malformed query, another method", http.MethodPatch, "%", "", "", http.StatusBadRequest, "the query string is malformed"},
		{"compressed body", http.MethodGet, "", "gzip", "x", http.StatusUnsupportedMediaType, "is not accepted: send the body uncompressed"},
		{"body over the limit", http.MethodPost, "", "", strings.Repeat("x", 17), http.StatusRequestEntityTooLarge, "16 bytes"},
	} {
		for _, path := range []string{"/status", "/livez"} {
			target := path
			if tt.query != "" {
				target += "?" + tt.query
			}
			req := httptest.NewRequest(tt.method, target, strings.NewReader(tt.body))
			if tt.body == "" {
				req.Body = http.NoBody
			}
			req.Header.Set("Authorization", "Bearer tok")
			if tt.encoding != "" {
				req.Header.Set("Content-Encoding", tt.encoding)
			}
			w := serve(e, req)
			want := "application/problem+json"
			if path == "/status" {
				want = "application/health+json"
			}
			if w.Code != tt.status || !strings.HasPrefix(w.Header().Get("Content-Type"), want) || !strings.Contains(w.Body.String(), tt.output) {
				t.Errorf("%s on %s: %d %q %s; want %d %s saying %q", tt.name, path, w.Code, w.Header().Get("Content-Type"), w.Body, tt.status, want, tt.output)
			}
		}
	}
}

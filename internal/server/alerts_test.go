package server_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/prodready/service/internal/server"
)

// alertCalls is a server.Alerts that records what it receives. Each test
// passes its own to the server, so the tests run in parallel.
type alertCalls struct {
	mu     sync.Mutex
	errors []server.ErrorReport
	panics []server.PanicReport
	begun  int
	ended  int
	seen   []bool // per request: whether the handler saw the scope's context
}

type scopeKey struct{}

func (a *alertCalls) Scope(ctx context.Context) (context.Context, func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.begun++
	return context.WithValue(ctx, scopeKey{}, true), func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.ended++
	}
}

func (a *alertCalls) ReportPanic(_ context.Context, p server.PanicReport) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.panics = append(a.panics, p)
}

func (a *alertCalls) ReportError(_ context.Context, e server.ErrorReport) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.errors = append(a.errors, e)
}

func TestServerErrorsAreReported(t *testing.T) {
	t.Parallel()
	errDB := errors.New("db: connection refused")
	tests := []struct {
		name       string
		handler    gin.HandlerFunc
		wantStatus int
		wantReport bool
		wantErr    error
	}{
		{"500 with a recorded error", func(c *gin.Context) {
			_ = c.Error(errDB)
			c.Status(http.StatusInternalServerError)
		}, 500, true, errDB},
		{"500 without a recorded error", func(c *gin.Context) { c.Status(http.StatusInternalServerError) }, 500, true, nil},
		{"502 with a recorded error", func(c *gin.Context) {
			_ = c.Error(errDB)
			c.Status(http.StatusBadGateway)
		}, 502, true, errDB},
		{"503 on purpose (not ready) is an answer", func(c *gin.Context) { c.Status(http.StatusServiceUnavailable) }, 503, false, nil},
		{"4xx with an error is the client's", func(c *gin.Context) {
			_ = c.Error(errDB)
			c.Status(http.StatusBadRequest)
		}, 400, false, nil},
		{"200", func(c *gin.Context) { c.Status(http.StatusOK) }, 200, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			calls := &alertCalls{}
			e, _ := newServer(t, nil, calls)
			e.GET("/test/fail/:id", func(c *gin.Context) {
				calls.seen = append(calls.seen, c.Request.Context().Value(scopeKey{}) != nil)
				tt.handler(c)
			})
			req := httptest.NewRequest(http.MethodGet, "/test/fail/7?token=abc&x=1", nil)
			req.Header.Set(server.RequestIDHeader, "req-5xx")
			req.Header.Set("User-Agent", "test-agent/1")
			req.Header.Set("Authorization", "Bearer t0k3n")
			w := serve(e, req)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", w.Code, tt.wantStatus)
			}
			if calls.begun != 1 || calls.ended != 1 || len(calls.seen) != 1 || !calls.seen[0] {
				t.Errorf("scope begun %d, ended %d, seen by handler %v; want 1, 1, true", calls.begun, calls.ended, calls.seen)
			}
			if !tt.wantReport {
				if len(calls.errors) != 0 {
					t.Errorf("reported %+v, want no report", calls.errors)
				}
				return
			}
			if len(calls.errors) != 1 {
				t.Fatalf("ReportError called %d times, want 1", len(calls.errors))
			}
			got := calls.errors[0]
			if got.Status != tt.wantStatus || !errors.Is(got.Err, tt.wantErr) || (tt.wantErr == nil) != (got.Err == nil) ||
				got.Method != "GET" || got.Route != "/test/fail/:id" || got.Path != "/test/fail/7" ||
				got.Query != "token=abc&x=1" || got.RequestID != "req-5xx" || got.UserAgent != "test-agent/1" ||
				got.ClientIP != "192.0.2.1" || got.Headers.Get("Authorization") != "Bearer t0k3n" {
				t.Errorf("report = %+v", got)
			}
			if len(calls.panics) != 0 {
				t.Error("ReportPanic called for an error")
			}
		})
	}
}

func TestPanicIsReportedOnceAsAPanic(t *testing.T) {
	t.Parallel()
	calls := &alertCalls{}
	e, _ := newServer(t, nil, calls)
	e.GET("/test/panic", func(c *gin.Context) { panic("boom") })
	req := httptest.NewRequest(http.MethodGet, "/test/panic?session=s1", nil)
	req.Header.Set("Cookie", "a=b")
	w := serve(e, req)
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("status = %d", w.Code)
	}
	if len(calls.panics) != 1 || len(calls.errors) != 0 {
		t.Fatalf("panics %d, errors %d; want one panic report and no 5xx report", len(calls.panics), len(calls.errors))
	}
	p := calls.panics[0]
	if p.Query != "session=s1" || p.ClientIP != "192.0.2.1" || p.Headers.Get("Cookie") != "a=b" {
		t.Errorf("panic report = %+v, want query, client IP and headers", p)
	}
	// The panic unwound past the scope: its records go with the panic report.
	if calls.begun != 1 || calls.ended != 0 {
		t.Errorf("scope begun %d, ended %d; want 1, 0", calls.begun, calls.ended)
	}
}

func TestStoreFailureReportsTheStoreError(t *testing.T) {
	t.Parallel()
	calls := &alertCalls{}
	errStore := errors.New("pq: too many connections")
	e, _ := newServer(t, &widgets{err: errStore}, calls)
	w := serve(e, httptest.NewRequest(http.MethodGet, "/v1/widgets/n1", nil))
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("status = %d", w.Code)
	}
	if len(calls.errors) != 1 || !errors.Is(calls.errors[0].Err, errStore) || calls.errors[0].Route != "/v1/widgets/:id" {
		t.Errorf("reports = %+v, want one with the store's error", calls.errors)
	}
}

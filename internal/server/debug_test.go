package server_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/prodready/service/internal/problem"
	"github.com/prodready/service/internal/server"
)

// TestFailRoutes: GET /debug/panic and /debug/error exist only when asked
// for (development, or staging with debug.fail_route); then they answer a
// 500 problem and are reported as a panic and as an error, as a real
// failure would be. Otherwise they are the 404 of any unknown path.
func TestFailRoutes(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{false, true} {
		calls := &alertCalls{}
		e := server.New(server.Options{Alerts: calls, FailRoutes: on})
		for _, path := range []string{"/debug/panic", "/debug/error"} {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.Header.Set("X-Request-ID", "req-debug-1")
			w := serve(e, req)
			if !on {
				wantProblem(t, w, http.StatusNotFound, problem.TypeNotFound)
				continue
			}
			wantProblem(t, w, http.StatusInternalServerError, problem.TypeInternal)
		}
		calls.mu.Lock()
		panics, errs := len(calls.panics), len(calls.errors)
		calls.mu.Unlock()
		if want := map[bool]int{false: 0, true: 1}[on]; panics != want || errs != want {
			t.Errorf("FailRoutes %v: %d panics and %d errors reported, want %d each", on, panics, errs, want)
		}
	}
}

// TestFailRoutes_Guarded: with a guard (outside development), a fail route
// runs only for a request the guard admits; the others get a 401 problem
// naming the scheme, or a 429 with Retry-After for a blocked address, and
// nothing is reported, so refused attempts cost no alert.
func TestFailRoutes_Guarded(t *testing.T) {
	t.Parallel()
	guard := func(c *gin.Context) (bool, int) {
		switch c.GetHeader("Authorization") {
		case "Bearer right":
			return true, 0
		case "Bearer blocked":
			return false, 7
		}
		return false, 0
	}
	for _, tt := range []struct {
		name, auth, path string
		status           int
		typ, header, val string
	}{
		{"no token", "", "/debug/panic", http.StatusUnauthorized, problem.TypeUnauthorized, "WWW-Authenticate", `Bearer realm="status"`},
		{"a wrong token", "Bearer wrong", "/debug/error", http.StatusUnauthorized, problem.TypeUnauthorized, "WWW-Authenticate", `Bearer realm="status"`},
		{"a blocked address", "Bearer blocked", "/debug/panic", http.StatusTooManyRequests, problem.TypeTooManyRequests, "Retry-After", "7"},
		{"the token: a panic", "Bearer right", "/debug/panic", http.StatusInternalServerError, problem.TypeInternal, "", ""},
		{"the token: an error", "Bearer right", "/debug/error", http.StatusInternalServerError, problem.TypeInternal, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			calls := &alertCalls{}
			e := server.New(server.Options{Alerts: calls, FailRoutes: true, FailRoutesGuard: guard})
			req := httptest.NewRequest(http.MethodGet, tt.path, nil)
			req.Header.Set("X-Request-ID", "req-debug-guard")
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			w := serve(e, req)
			wantProblem(t, w, tt.status, tt.typ)
			if tt.header != "" && w.Header().Get(tt.header) != tt.val {
				t.Errorf("%s = %q, want %q", tt.header, w.Header().Get(tt.header), tt.val)
			}
			calls.mu.Lock()
			reported := len(calls.panics) + len(calls.errors)
			calls.mu.Unlock()
			if want := map[bool]int{true: 1, false: 0}[tt.status == http.StatusInternalServerError]; reported != want {
				t.Errorf("%d failures reported, want %d", reported, want)
			}
		})
	}
}

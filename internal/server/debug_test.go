package server_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

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

package problem_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/prodready/service/internal/logging"
	"github.com/prodready/service/internal/problem"
)

func init() { gin.SetMode(gin.TestMode) }

// serve runs one request through a router whose /*path route calls write,
// with the request ID "req-1" in the request context like the server's
// middleware puts it there. It also reports whether a handler after write ran.
func serve(t *testing.T, target string, write gin.HandlerFunc) (*httptest.ResponseRecorder, bool) {
	t.Helper()
	r := gin.New()
	nextRan := false
	r.GET("/*path",
		func(c *gin.Context) {
			c.Request = c.Request.WithContext(logging.WithRequestID(c.Request.Context(), "req-1"))
		},
		write,
		func(c *gin.Context) { nextRan = true },
	)
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
	return w, nextRan
}

func decode(t *testing.T, w *httptest.ResponseRecorder) problem.Problem {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != problem.ContentType {
		t.Fatalf("Content-Type = %q, want %q", ct, problem.ContentType)
	}
	var p problem.Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("body is not a problem: %v\n%s", err, w.Body)
	}
	return p
}

func TestWriteFillsRequestIDAndInstanceAndAborts(t *testing.T) {
	w, nextRan := serve(t, "/v1/notes/a%20b?x=1", func(c *gin.Context) {
		problem.Write(c, problem.NotFound("no note has id \"a b\""))
	})

	if w.Code != http.StatusNotFound {
		t.Fatalf("status = %d, want 404", w.Code)
	}
	if nextRan {
		t.Error("the handler after Write ran; Write must abort the chain")
	}
	got := decode(t, w)
	want := problem.Problem{
		Type:      problem.TypeNotFound,
		Title:     "Resource not found",
		Status:    http.StatusNotFound,
		Detail:    `no note has id "a b"`,
		Instance:  "/v1/notes/a%20b", // the path, escaped, without the query
		RequestID: "req-1",
	}
	if got.Type != want.Type || got.Title != want.Title || got.Status != want.Status ||
		got.Detail != want.Detail || got.Instance != want.Instance || got.RequestID != want.RequestID {
		t.Errorf("problem = %+v\nwant      %+v", got, want)
	}
}

func TestWireFormat(t *testing.T) {
	// The JSON member names are the contract; check them literally.
	w, _ := serve(t, "/x", func(c *gin.Context) {
		problem.Write(c, problem.Invalid(problem.FieldError{Field: "title", Message: "is required"}))
	})
	var raw map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"type", "title", "status", "detail", "instance", "request_id", "errors"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("member %q missing from %s", k, w.Body)
		}
	}
	if !strings.Contains(w.Body.String(), `"errors":[{"field":"title","message":"is required"}]`) {
		t.Errorf("errors not in the documented shape: %s", w.Body)
	}

	// Without field errors the member is omitted rather than null.
	w, _ = serve(t, "/x", func(c *gin.Context) { problem.Write(c, problem.BadRequest("bad")) })
	if strings.Contains(w.Body.String(), `"errors"`) {
		t.Errorf("errors present without field errors: %s", w.Body)
	}
}

func TestHelpers(t *testing.T) {
	tests := []struct {
		name       string
		p          problem.Problem
		wantType   string
		wantStatus int
		wantDetail string // substring
	}{
		{"bad request", problem.BadRequest("malformed JSON at byte 3"), problem.TypeBadRequest, 400, "byte 3"},
		{"invalid", problem.Invalid(problem.FieldError{Field: "limit", Message: "x"}), problem.TypeValidation, 400, "see errors"},
		{"not found", problem.NotFound("gone"), problem.TypeNotFound, 404, "gone"},
		{"method not allowed", problem.MethodNotAllowed("PATCH"), problem.TypeMethodNotAllowed, 405, "PATCH"},
		{"precondition failed", problem.PreconditionFailed("stale"), problem.TypePreconditionFailed, 412, "stale"},
		{"too large", problem.PayloadTooLarge(1024), problem.TypePayloadTooLarge, 413, "1024 bytes"},
		{"media type", problem.UnsupportedMediaType("send JSON"), problem.TypeUnsupportedMediaType, 415, "send JSON"},
		{"precondition required", problem.PreconditionRequired("send If-Match"), problem.TypePreconditionRequired, 428, "If-Match"},
		{"internal", problem.Internal(), problem.TypeInternal, 500, "request_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, _ := serve(t, "/x", func(c *gin.Context) { problem.Write(c, tt.p) })
			if w.Code != tt.wantStatus {
				t.Errorf("HTTP status = %d, want %d", w.Code, tt.wantStatus)
			}
			got := decode(t, w)
			if got.Type != tt.wantType || got.Status != tt.wantStatus || got.Title == "" {
				t.Errorf("got type %q status %d title %q, want type %q status %d",
					got.Type, got.Status, got.Title, tt.wantType, tt.wantStatus)
			}
			if !strings.Contains(got.Detail, tt.wantDetail) {
				t.Errorf("detail %q does not mention %q", got.Detail, tt.wantDetail)
			}
		})
	}
}

func TestValidationTitle(t *testing.T) {
	// The issue asks for exactly this title; clients display it.
	if got := problem.Invalid().Title; got != "Validation failed" {
		t.Errorf("title = %q, want %q", got, "Validation failed")
	}
}

func TestWriteDefaultsForAdHocProblems(t *testing.T) {
	// A hand-built problem without type, title or status still produces a
	// valid RFC 9457 response: about:blank, the status text, 500.
	w, _ := serve(t, "/x", func(c *gin.Context) { problem.Write(c, problem.Problem{}) })
	got := decode(t, w)
	if w.Code != 500 || got.Status != 500 || got.Type != "about:blank" || got.Title != "Internal Server Error" {
		t.Errorf("got HTTP %d %+v", w.Code, got)
	}

	w, _ = serve(t, "/x", func(c *gin.Context) {
		problem.Write(c, problem.Problem{Status: http.StatusTooManyRequests})
	})
	got = decode(t, w)
	if w.Code != 429 || got.Type != "about:blank" || got.Title != "Too Many Requests" {
		t.Errorf("got HTTP %d %+v", w.Code, got)
	}
}

func TestWriteAfterResponseStartedOnlyAborts(t *testing.T) {
	w, nextRan := serve(t, "/x", func(c *gin.Context) {
		c.String(http.StatusOK, "partial")
		problem.Write(c, problem.Internal())
	})
	if w.Code != http.StatusOK || w.Body.String() != "partial" {
		t.Errorf("response changed after it started: %d %q", w.Code, w.Body)
	}
	if nextRan {
		t.Error("chain not aborted")
	}
}

func TestTypesTable(t *testing.T) {
	seen := map[string]bool{}
	for _, ti := range problem.Types {
		if !strings.HasPrefix(ti.URI, problem.TypePrefix) {
			t.Errorf("%s does not start with %s", ti.URI, problem.TypePrefix)
		}
		if seen[ti.URI] {
			t.Errorf("%s listed twice", ti.URI)
		}
		seen[ti.URI] = true
		known := http.StatusText(ti.Status) != "" || ti.Status == problem.StatusClientClosedRequest // nginx's, not IANA's
		if ti.Title == "" || ti.Advice == "" || !known {
			t.Errorf("%s is incompletely documented: %+v", ti.URI, ti)
		}
	}
}

func TestNewPanicsOnUnregisteredType(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New accepted a type that is not in Types")
		}
	}()
	problem.New("/problems/made-up", "")
}

package health_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/prodready/service/internal/health"
)

const token = "0123456789abcdef-status"

func engine(h *health.Handler) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.GET("/status", h.Status())
	e.HEAD("/status", h.Status())
	e.POST("/status", h.MethodNotAllowed())
	e.GET("/readyz", h.Readyz())
	return e
}

func handler(tokens []string, query bool, checks ...health.Check) *health.Handler {
	r := health.NewRunner(nil, 0, 200*time.Millisecond, checks...)
	return health.NewHandler(r, health.HandlerOptions{
		Info:   health.Info{Version: "v1.2.3", ReleaseID: "abc123", ServiceID: "notes-api", Description: "test"},
		Tokens: tokens, AllowQueryToken: query, CacheTTL: 2 * time.Second,
	})
}

func check(name string, st health.Status) health.Check {
	return health.Check{Name: name, ComponentType: "datastore", Run: func(context.Context) health.Result {
		return health.Result{Status: st, ObservedValue: 1.5, ObservedUnit: "ms"}
	}}
}

// TestStatus_EveryAnswerIsHealthJSON parses each kind of answer as
// application/health+json: a monitor can always read the body.
func TestStatus_EveryAnswerIsHealthJSON(t *testing.T) {
	hang := health.Check{Name: "db:responseTime", Timeout: 50 * time.Millisecond, Run: func(context.Context) health.Result {
		time.Sleep(time.Hour)
		return health.Result{}
	}}
	panics := health.Check{Name: "db:responseTime", Run: func(context.Context) health.Result { panic("x") }}
	tests := []struct {
		name       string
		h          *health.Handler
		method     string
		target     string
		auth       string
		wantCode   int
		wantStatus string
		wantChecks bool
	}{
		{"pass", handler([]string{token}, false, check("db:responseTime", health.Pass)), "GET", "/status", "Bearer " + token, 200, "pass", true},
		{"warn", handler([]string{token}, false, check("disk:free", health.Warn)), "GET", "/status", "Bearer " + token, 200, "warn", true},
		{"fail", handler([]string{token}, false, check("db:responseTime", health.Fail)), "GET", "/status", "Bearer " + token, 500, "fail", true},
		{"second of two rotated tokens", handler([]string{"another-token-0123456", token}, false, check("a:b", health.Pass)), "GET", "/status", "Bearer " + token, 200, "pass", true},
		{"no token sent", handler([]string{token}, false), "GET", "/status", "", 401, "fail", false},
		{"scheme in lower case", handler([]string{token}, false, check("a:b", health.Pass)), "GET", "/status", "bearer " + token, 200, "pass", true},
		{"wrong token", handler([]string{token}, false), "GET", "/status", "Bearer " + token + "x", 401, "fail", false},
		{"not a bearer token", handler([]string{token}, false), "GET", "/status", "Basic " + token, 401, "fail", false},
		{"query token when not allowed", handler([]string{token}, false), "GET", "/status?token=" + token, "", 401, "fail", false},
		{"query token when allowed", handler([]string{token}, true, check("a:b", health.Pass)), "GET", "/status?token=" + token, "", 200, "pass", true},
		{"no token configured", handler(nil, false), "GET", "/status", "Bearer " + token, 503, "fail", false},
		{"method not allowed", handler([]string{token}, false), "POST", "/status", "Bearer " + token, 405, "fail", false},
		{"a check times out", handler([]string{token}, false, hang), "GET", "/status", "Bearer " + token, 500, "fail", true},
		{"a check panics", handler([]string{token}, false, panics), "GET", "/status", "Bearer " + token, 500, "fail", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.target, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			w := httptest.NewRecorder()
			engine(tt.h).ServeHTTP(w, req)
			if w.Code != tt.wantCode {
				t.Fatalf("code %d, want %d: %s", w.Code, tt.wantCode, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != health.ContentType {
				t.Errorf("Content-Type %q, want %s", ct, health.ContentType)
			}
			var b map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
				t.Fatalf("body is not JSON: %v: %s", err, w.Body)
			}
			if b["status"] != tt.wantStatus || b["serviceId"] != "notes-api" || b["version"] != "v1.2.3" || b["releaseId"] != "abc123" {
				t.Errorf("body %v", b)
			}
			checks, has := b["checks"].(map[string]any)
			if has != tt.wantChecks {
				t.Fatalf("checks present = %v, want %v: %s", has, tt.wantChecks, w.Body)
			}
			for name, v := range checks {
				if !strings.Contains(name, ":") {
					t.Errorf("check key %q is not component:measurement", name)
				}
				entry := v.([]any)[0].(map[string]any)
				if _, err := time.Parse(time.RFC3339, entry["time"].(string)); err != nil || entry["status"] == nil {
					t.Errorf("check %s lacks status or an RFC 3339 time: %v", name, entry)
				}
			}
			if tt.wantCode == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tt.wantCode == 405 && w.Header().Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow %q", w.Header().Get("Allow"))
			}
			if tt.wantChecks && w.Header().Get("Cache-Control") != "private, max-age=2" {
				t.Errorf("Cache-Control %q", w.Header().Get("Cache-Control"))
			}
			if strings.Contains(w.Body.String(), token) {
				t.Error("the token is echoed in the body")
			}
		})
	}
}

func TestStatus_HEAD(t *testing.T) {
	h := handler([]string{token}, false, check("db:responseTime", health.Fail))
	req := httptest.NewRequest("HEAD", "/status", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	engine(h).ServeHTTP(w, req)
	if w.Code != 500 || w.Body.Len() != 0 || w.Header().Get("Content-Type") != health.ContentType {
		t.Fatalf("HEAD: %d, %d bytes, %q", w.Code, w.Body.Len(), w.Header().Get("Content-Type"))
	}
}

func TestReadyz(t *testing.T) {
	up := health.NewRunner(nil, 0, time.Second, check("db:responseTime", health.Pass))
	down := health.NewRunner(nil, 0, time.Second, check("db:responseTime", health.Fail))
	tests := []struct {
		name     string
		ready    *health.Runner
		draining bool
		want     int
	}{
		{"database up", up, false, 200},
		{"database down", down, false, 503},
		{"draining after SIGTERM", up, true, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := health.NewHandler(health.NewRunner(nil, 0, time.Second), health.HandlerOptions{Ready: tt.ready})
			if tt.draining {
				h.SetDraining()
			}
			w := httptest.NewRecorder()
			engine(h).ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
			if w.Code != tt.want {
				t.Errorf("code %d, want %d", w.Code, tt.want)
			}
		})
	}
}

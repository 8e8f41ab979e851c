package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/prodready/service/internal/logging"
	"github.com/prodready/service/internal/servicetest"
)

// accessLogEngine serves the probe and status routes and a resource route
// that answers the status in ?code=, behind requestID and accessLog as New
// sets them up.
func accessLogEngine(t *testing.T, level string) (*gin.Engine, *servicetest.LogBuffer) {
	t.Helper()
	logs := &servicetest.LogBuffer{}
	logger, _, err := logging.New(logs, logging.Options{Level: level, Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.RedirectTrailingSlash = false // as New sets it: /livez/ is a 404
	e.Use(requestID(), accessLog(logger, newStatusLogGate(time.Minute)))
	answer := func(c *gin.Context) {
		code, err := strconv.Atoi(c.DefaultQuery("code", "200"))
		if err != nil {
			code = http.StatusBadRequest
		}
		c.String(code, "body")
	}
	e.GET(livezPath, answer)
	e.GET(readyzPath, answer)
	e.GET(statusPath, answer)
	e.GET("/v1/widgets/:id", answer)
	// Another method on /status has no route template: NoMethod answers, as
	// in New.
	e.HandleMethodNotAllowed = true
	e.NoMethod(func(c *gin.Context) { c.String(http.StatusMethodNotAllowed, "use GET") })
	// As load shedding refuses: a 503 counted and summarised elsewhere.
	e.GET("/v1/refused", func(c *gin.Context) {
		Summarized(c)
		c.String(http.StatusServiceUnavailable, "body")
	})
	return e, logs
}

func TestAccessLog(t *testing.T) {
	tests := []struct {
		name      string
		target    string
		wantLevel string // "" means no access record
		wantRoute string
		wantPath  string
		status    int
	}{
		{"a request is logged at info", "/v1/widgets/n1", "INFO", "/v1/widgets/:id", "/v1/widgets/n1", 200},
		{"secret query values are redacted", "/v1/widgets/n1?token=s3cr3t&limit=5&api_key=k3y&Password=pw",
			"INFO", "/v1/widgets/:id", "/v1/widgets/n1?token=[redacted]&limit=5&api_key=[redacted]&Password=[redacted]", 200},
		{"4xx is the client's: info", "/v1/widgets/n1?code=404", "INFO", "/v1/widgets/:id", "/v1/widgets/n1?code=404", 404},
		{"5xx is ours: warn", "/v1/widgets/n1?code=503", "WARN", "/v1/widgets/:id", "/v1/widgets/n1?code=503", 503},
		{"liveness is not logged", "/livez", "", "", "", 200},
		{"liveness is not logged, even failing", "/livez?code=500", "", "", "", 500},
		{"readiness is not logged", "/readyz?code=503", "", "", "", 503},
		{"status is not logged when it succeeds", "/status?token=s3cr3t", "", "", "", 200},
		{"status is logged when refused", "/status?token=wrong&code=401", "INFO", "/status", "/status?token=[redacted]&code=401", 401},
		{"status is logged when unhealthy", "/status?code=503", "WARN", "/status", "/status?code=503", 503},
		{"a probe's typo has no route and is logged", "/livez/", "INFO", "", "/livez/", 404},
		{"a refusal summarised elsewhere (shedding) is not logged", "/v1/refused", "", "", "", 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, logs := accessLogEngine(t, "info")
			req := httptest.NewRequest(http.MethodGet, tt.target, nil)
			w := httptest.NewRecorder()
			e.ServeHTTP(w, req)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			recs := logs.Take(t)
			if tt.wantLevel == "" {
				if len(recs) != 0 {
					t.Errorf("want no record, got %v", recs)
				}
				return
			}
			if len(recs) != 1 {
				t.Fatalf("want one access record, got %v", recs)
			}
			r := recs[0]
			want := map[string]any{
				"level": tt.wantLevel, "msg": "request", "method": "GET", "route": tt.wantRoute,
				"path": tt.wantPath, "status": float64(tt.status), "client_ip": "192.0.2.1",
				"request_id": w.Header().Get(RequestIDHeader),
			}
			if tt.status != http.StatusNotFound || tt.wantRoute != "" {
				want["bytes"] = float64(len("body"))
			}
			for k, v := range want {
				if r[k] != v {
					t.Errorf("%s = %#v, want %#v (record %v)", k, r[k], v, r)
				}
			}
			if d, ok := r["duration_ms"].(float64); !ok || d < 0 {
				t.Errorf("duration_ms = %v, want a number", r["duration_ms"])
			}
			if line, _ := json.Marshal(r); strings.Contains(string(line), "s3cr3t") || strings.Contains(string(line), "k3y") {
				t.Errorf("a secret reached the log: %s", line)
			}
		})
	}
}

// TestAccessLog_WrongMethodOnStatusIsGated: a monitor polling /status with
// the wrong method gets 405 on every poll, and the log has one line for it
// (the status route's gate), not one a poll.
func TestAccessLog_WrongMethodOnStatusIsGated(t *testing.T) {
	e, logs := accessLogEngine(t, "info")
	for range 5 {
		w := httptest.NewRecorder()
		e.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/status", nil))
		if w.Code != http.StatusMethodNotAllowed {
			t.Fatalf("POST /status: %d, want 405", w.Code)
		}
	}
	var lines []map[string]any
	for _, r := range logs.Take(t) {
		if r["msg"] == "request" {
			lines = append(lines, r)
		}
	}
	if len(lines) != 1 || lines[0]["route"] != statusPath || lines[0]["status"] != float64(405) {
		t.Errorf("access records %v, want one for the 405 on route /status", lines)
	}
}

func TestAccessLogRequestStartedAtDebug(t *testing.T) {
	e, logs := accessLogEngine(t, "debug")
	for _, target := range []string{"/v1/widgets/n1", "/status", "/livez"} {
		e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, target, nil))
	}
	var started []string
	for _, r := range logs.Take(t) {
		if r["msg"] == "request started" {
			started = append(started, r["route"].(string))
			if r["request_id"] == nil {
				t.Errorf("request started without request_id: %v", r)
			}
		}
	}
	// The status route is polled: no start line for it either.
	if len(started) != 1 || started[0] != "/v1/widgets/:id" {
		t.Errorf("request started lines for %q, want only /v1/widgets/:id", started)
	}
}

// TestClientIP: the access log's and the alerts' client address is what
// gin's ClientIP gives with no proxy trusted, for every kind of peer, and
// X-Forwarded-For does not change it.
func TestClientIP(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	_ = e.SetTrustedProxies(nil)
	for _, remote := range []string{"192.0.2.1:1234", "127.0.0.1:80", "[::1]:443", "[2001:db8::1]:8080",
		"[::ffff:192.0.2.7]:99", "[fe80::1%eth0]:1", "01.2.3.4:5", "not an address", "", "@"} {
		c := gin.CreateTestContextOnly(httptest.NewRecorder(), e)
		c.Request = httptest.NewRequest(http.MethodGet, "/", nil)
		c.Request.RemoteAddr = remote
		c.Request.Header.Set("X-Forwarded-For", "203.0.113.9")
		if got, want := clientIP(c), c.ClientIP(); got != want {
			t.Errorf("peer %q: clientIP %q, gin's ClientIP %q", remote, got, want)
		}
	}
}

// TestAccessLog_BytesAreWhatWasSent: a HEAD answer has no body (net/http
// drops what the handler writes, as for GET), so its record says 0 bytes,
// not the size of the body a GET would have got.
func TestAccessLog_BytesAreWhatWasSent(t *testing.T) {
	for _, tt := range []struct {
		method string
		want   float64
	}{{http.MethodGet, float64(len("body"))}, {http.MethodHead, 0}} {
		t.Run(tt.method, func(t *testing.T) {
			e, logs := accessLogEngine(t, "info")
			e.HEAD("/v1/widgets/:id", func(c *gin.Context) { c.String(http.StatusOK, "body") })
			e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(tt.method, "/v1/widgets/n1", nil))
			recs := logs.Take(t)
			if len(recs) != 1 || recs[0]["bytes"] != tt.want {
				t.Errorf("%s: records %v, want one with bytes %v", tt.method, recs, tt.want)
			}
		})
	}
}

// TestRequestInfo_PathParametersRedacted: what a 5xx mail shows of the
// path has a secret-looking path parameter redacted, as the access log does.
func TestRequestInfo_PathParametersRedacted(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	c.Request = httptest.NewRequest(http.MethodGet, "/v1/notes/x;token=s3cr3t-value", nil)
	if got := requestInfo(c).Path; got != "/v1/notes/x;token=[redacted]" {
		t.Errorf("Path = %q, want the token redacted", got)
	}
}

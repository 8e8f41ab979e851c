package server_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/prodready/service/internal/logging"
	"github.com/prodready/service/internal/problem"
	"github.com/prodready/service/internal/server"
	"github.com/prodready/service/internal/servicetest"
)

const testMaxBody = 1024

// newServer builds the server as cmd/ does, with a logger from logging.New,
// the widgets test resource (nil: one that succeeds) and alerts (nil: none).
func newServer(t *testing.T, res *widgets, alerts server.Alerts) (*gin.Engine, *servicetest.LogBuffer) {
	t.Helper()
	logs := &servicetest.LogBuffer{}
	logger, _, err := logging.New(logs, logging.Options{Level: "info", Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	if res == nil {
		res = &widgets{}
	}
	res.logger = logger
	e := server.New(server.Options{
		Logger:       logger,
		MaxBodyBytes: testMaxBody,
		Version:      "v1.2.3",
		Alerts:       alerts,
		Routes:       []func(gin.IRouter){res.routes},
	})
	return e, logs
}

func serve(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// wantProblem asserts a problem+json response of the given type whose
// request_id is the one in the X-Request-ID header.
func wantProblem(t *testing.T, w *httptest.ResponseRecorder, status int, typ string) problem.Problem {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d; body %s", w.Code, status, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != problem.ContentType {
		t.Errorf("Content-Type = %q, want %q", ct, problem.ContentType)
	}
	var p problem.Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("body is not a problem: %v: %s", err, w.Body)
	}
	if p.Type != typ || p.Status != status || p.Title == "" || p.Instance == "" {
		t.Errorf("problem = %+v, want type %s status %d with title and instance", p, typ, status)
	}
	if rid := w.Header().Get(server.RequestIDHeader); p.RequestID == "" || p.RequestID != rid {
		t.Errorf("request_id = %q, header %q; want equal and set", p.RequestID, rid)
	}
	return p
}

func TestUnknownRouteIsProblem404(t *testing.T) {
	e, _ := newServer(t, nil, nil)
	for _, target := range []string{"/nope", "/v1/widgets/a/b", "/livez/"} {
		w := serve(e, httptest.NewRequest(http.MethodGet, target, nil))
		// "/livez/" also shows there is no redirect to "/livez".
		p := wantProblem(t, w, http.StatusNotFound, problem.TypeNotFound)
		if p.Instance != target {
			t.Errorf("instance = %q, want %q", p.Instance, target)
		}
	}
}

func TestWrongMethodIsProblem405WithAllow(t *testing.T) {
	e, _ := newServer(t, nil, nil)
	tests := []struct {
		method, target string
		allow          []string
	}{
		{http.MethodPatch, "/v1/widgets/x", []string{"DELETE", "GET", "PUT"}},
		{http.MethodPost, "/v1/widgets/x", []string{"DELETE", "GET", "PUT"}},
		{http.MethodDelete, "/v1/widgets", []string{"GET", "POST"}},
		{http.MethodPost, "/livez", []string{"GET", "HEAD"}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			w := serve(e, httptest.NewRequest(tt.method, tt.target, nil))
			p := wantProblem(t, w, http.StatusMethodNotAllowed, problem.TypeMethodNotAllowed)
			allow := strings.Split(w.Header().Get("Allow"), ", ")
			slices.Sort(allow)
			if !slices.Equal(allow, tt.allow) {
				t.Errorf("Allow = %v, want %v", allow, tt.allow)
			}
			if !strings.Contains(p.Detail, tt.method) {
				t.Errorf("detail %q does not name the method", p.Detail)
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	e, _ := newServer(t, nil, nil)
	long128 := strings.Repeat("a", 128)
	tests := []struct {
		name, incoming string
		kept           bool
	}{
		{"sane ID is kept", "client-42.retry_1:abc", true},
		{"128 characters is kept", long128, true},
		{"129 characters is replaced", long128 + "a", false},
		{"300 characters is replaced", strings.Repeat("x", 300), false},
		{"spaces are replaced", "has space", false},
		{"newlines are replaced", "abc\nlevel=ERROR msg=forged", false},
		{"quotes are replaced", `a"b`, false},
		{"every allowed character is kept", "AZaz09._:-", true},
		{"non-ASCII is replaced", "idé", false},
		{"a NUL is replaced", "a\x00", false},
		{"absent gets a fresh one", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/nope", nil)
			if tt.incoming != "" {
				req.Header.Set(server.RequestIDHeader, tt.incoming)
			}
			w := serve(e, req)
			got := w.Header().Get(server.RequestIDHeader)
			if tt.kept {
				if got != tt.incoming {
					t.Errorf("X-Request-ID = %q, want the incoming %q", got, tt.incoming)
				}
				return
			}
			id, err := uuid.Parse(got)
			if err != nil || id.Version() != 7 || id.Variant() != uuid.RFC4122 || len(got) != 36 {
				t.Errorf("X-Request-ID = %q, want a fresh UUIDv7 in its 36-character form", got)
			}
			// Its first 48 bits are the Unix time in milliseconds.
			if sec, _ := id.Time().UnixTime(); time.Since(time.Unix(sec, 0)).Abs() > time.Minute {
				t.Errorf("X-Request-ID %s says it was made at %s", got, time.Unix(sec, 0))
			}
			// The body carries the same ID as the header.
			wantProblem(t, w, http.StatusNotFound, problem.TypeNotFound)
		})
	}

	// Generated IDs are unique, and begin with the millisecond they were
	// made in, so they sort by time: an incident's IDs sit together.
	seen := make(map[string]bool)
	for range 2000 {
		before := time.Now().UnixMilli()
		got := serve(e, httptest.NewRequest(http.MethodGet, "/nope", nil)).Header().Get(server.RequestIDHeader)
		after := time.Now().UnixMilli()
		if seen[got] {
			t.Fatalf("two requests got the same generated ID %s", got)
		}
		seen[got] = true
		id, err := uuid.Parse(got)
		if err != nil {
			t.Fatalf("X-Request-ID %q: %v", got, err)
		}
		if sec, nsec := id.Time().UnixTime(); time.Unix(sec, nsec).UnixMilli() < before || time.Unix(sec, nsec).UnixMilli() > after {
			t.Fatalf("ID %s says %s, made between %s and %s", got, time.Unix(sec, nsec), time.UnixMilli(before), time.UnixMilli(after))
		}
	}
}

// newPanicServer is newServer with alerts recorded, and the panic reports
// they receive.
func newPanicServer(t *testing.T) (*gin.Engine, *servicetest.LogBuffer, *[]server.PanicReport) {
	t.Helper()
	calls := &alertCalls{}
	e, logs := newServer(t, nil, calls)
	return e, logs, &calls.panics
}

func TestPanicBecomesProblem500(t *testing.T) {
	t.Parallel()
	e, logs, reports := newPanicServer(t)
	e.GET("/test/panic/:n", func(c *gin.Context) { panic("secret kaboom in table users") })

	req := httptest.NewRequest(http.MethodGet, "/test/panic/1", nil)
	req.Header.Set(server.RequestIDHeader, "req-panic")
	req.Header.Set("User-Agent", "test-agent/1")
	w := serve(e, req)

	p := wantProblem(t, w, http.StatusInternalServerError, problem.TypeInternal)
	if p.RequestID != "req-panic" {
		t.Errorf("request_id = %q, want req-panic", p.RequestID)
	}
	if strings.Contains(w.Body.String(), "kaboom") || strings.Contains(w.Body.String(), "goroutine") {
		t.Errorf("panic details leaked to the client: %s", w.Body)
	}

	recs := logs.Records(t, "panic serving request")
	if len(recs) != 1 {
		t.Fatalf("got %d panic log records, want 1", len(recs))
	}
	r := recs[0]
	stack, _ := r["stack"].(string)
	if r["level"] != "ERROR" || r["request_id"] != "req-panic" || r["panic"] != "secret kaboom in table users" ||
		!strings.Contains(stack, "server_test.go") || r["route"] != "/test/panic/:n" {
		t.Errorf("panic log record = %v", r)
	}

	if len(*reports) != 1 {
		t.Fatalf("ReportPanic called %d times, want 1", len(*reports))
	}
	got := (*reports)[0]
	if got.Value != "secret kaboom in table users" || got.RequestID != "req-panic" || got.Method != "GET" ||
		got.Route != "/test/panic/:n" || got.Path != "/test/panic/1" || got.UserAgent != "test-agent/1" ||
		!bytes.Contains(got.Stack, []byte("server_test.go")) {
		t.Errorf("report = %+v", got)
	}

	// The access log still records the request, with the 500.
	access := logs.Records(t, "request")
	if len(access) != 1 || access[0]["status"] != 500.0 {
		t.Errorf("access log = %v, want one record with status 500", access)
	}
}

func TestPanicAfterResponseStartedKeepsResponse(t *testing.T) {
	t.Parallel()
	e, logs, reports := newPanicServer(t)
	e.GET("/test/late-panic", func(c *gin.Context) {
		c.String(http.StatusOK, "partial")
		c.Writer.Flush()
		panic("late")
	})
	w := serve(e, httptest.NewRequest(http.MethodGet, "/test/late-panic", nil))
	if w.Code != http.StatusOK || w.Body.String() != "partial" {
		t.Errorf("got %d %q; a started response cannot be replaced", w.Code, w.Body)
	}
	if len(logs.Records(t, "panic serving request")) != 1 || len(*reports) != 1 {
		t.Error("a late panic must still be logged and reported")
	}
}

func TestAbortHandlerPanicPassesThrough(t *testing.T) {
	t.Parallel()
	e, logs, reports := newPanicServer(t)
	e.GET("/test/abort", func(c *gin.Context) { panic(http.ErrAbortHandler) })

	defer func() {
		if err, _ := recover().(error); !errors.Is(err, http.ErrAbortHandler) {
			t.Errorf("recovered %v, want http.ErrAbortHandler re-panicked for net/http", err)
		}
		if len(*reports) != 0 || len(logs.Records(t, "panic serving request")) != 0 {
			t.Error("an intentional abort was reported as a crash")
		}
	}()
	serve(e, httptest.NewRequest(http.MethodGet, "/test/abort", nil))
	t.Error("ServeHTTP returned normally")
}

func TestBodyOverLimitIs413(t *testing.T) {
	big := `{"title":"x","body":"` + strings.Repeat("b", testMaxBody) + `"}`

	t.Run("declared Content-Length is refused before reading", func(t *testing.T) {
		store := &widgets{}
		e, _ := newServer(t, store, nil)
		req := httptest.NewRequest(http.MethodPost, "/v1/widgets", strings.NewReader(big))
		req.Header.Set("Content-Type", "application/json")
		w := serve(e, req)
		p := wantProblem(t, w, http.StatusRequestEntityTooLarge, problem.TypePayloadTooLarge)
		if !strings.Contains(p.Detail, "1024 bytes") {
			t.Errorf("detail %q does not state the limit", p.Detail)
		}
		if store.calls.Load() != 0 {
			t.Error("the store was called for a rejected body")
		}
	})

	t.Run("chunked body is cut off while it is read", func(t *testing.T) {
		store := &widgets{}
		e, _ := newServer(t, store, nil)
		var sawLength atomic.Int64
		var sawChunked atomic.Bool
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sawLength.Store(r.ContentLength)
			sawChunked.Store(slices.Contains(r.TransferEncoding, "chunked"))
			e.ServeHTTP(w, r)
		}))
		defer srv.Close()

		// io.MultiReader hides the length, so the client sends it chunked.
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/widgets", io.MultiReader(strings.NewReader(big)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)

		if sawLength.Load() != -1 || !sawChunked.Load() {
			t.Fatalf("request was not chunked (Content-Length %d); the test proves nothing", sawLength.Load())
		}
		if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get("Content-Type") != problem.ContentType {
			t.Fatalf("got %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		var p problem.Problem
		if err := json.Unmarshal(body, &p); err != nil || p.Type != problem.TypePayloadTooLarge ||
			p.RequestID != resp.Header.Get(server.RequestIDHeader) {
			t.Errorf("problem = %+v (%v)", p, err)
		}
		if store.calls.Load() != 0 {
			t.Error("the store was called for a rejected body")
		}
	})

	t.Run("body at the limit is accepted", func(t *testing.T) {
		store := &widgets{}
		e, _ := newServer(t, store, nil)
		ok := `{"title":"x","body":"` + strings.Repeat("b", testMaxBody-len(`{"title":"x","body":""}`)) + `"}`
		req := httptest.NewRequest(http.MethodPost, "/v1/widgets", strings.NewReader(ok))
		req.Header.Set("Content-Type", "application/json")
		if w := serve(e, req); w.Code != http.StatusCreated {
			t.Errorf("status = %d, want 201 for exactly %d bytes: %s", w.Code, len(ok), w.Body)
		}
	})
}

// TestRequestInputIsCheckedBeforeTheHandler: what net/http and gin would
// let through silently gets a 4xx problem before any handler runs: a query
// string that does not parse (an invalid escape, or more parameters than
// Go parses, which would drop a bad value past the cap), and a compressed
// body the service does not decode.
func TestRequestInputIsCheckedBeforeTheHandler(t *testing.T) {
	many := strings.Repeat("a=1&", 10_000) + "limit=abc"
	tests := []struct {
		name, method, target, encoding string
		status                         int
		typ                            string
	}{
		{"an invalid escape in the query", http.MethodGet, "/v1/widgets?%zz=1", "", http.StatusBadRequest, problem.TypeBadRequest},
		{"more parameters than Go parses", http.MethodGet, "/v1/widgets?" + many, "", http.StatusBadRequest, problem.TypeBadRequest},
		{"a gzip body", http.MethodPost, "/v1/widgets", "gzip", http.StatusUnsupportedMediaType, problem.TypeUnsupportedMediaType},
		{"a sane query", http.MethodGet, "/v1/widgets?a=1&b=%20", "", http.StatusOK, ""},
		{"identity encoding", http.MethodPost, "/v1/widgets", "identity", http.StatusCreated, ""},
		// Two headers saying how to read the body: this service would read
		// the first, a proxy in front may have read the other.
		{"Content-Encoding twice", http.MethodPost, "/v1/widgets", "identity\ngzip", http.StatusBadRequest, problem.TypeBadRequest},
		{"Content-Type twice", http.MethodPost, "/v1/widgets", "\ntext/plain", http.StatusBadRequest, problem.TypeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &widgets{}
			e, _ := newServer(t, store, nil)
			var body io.Reader
			if tt.method == http.MethodPost {
				body = strings.NewReader(`{"title":"x","body":"y"}`)
			}
			req := httptest.NewRequest(tt.method, tt.target, body)
			req.Header.Set("Content-Type", "application/json")
			// encoding: Content-Encoding values, one a line; after a leading
			// newline, another Content-Type instead.
			if ct, ok := strings.CutPrefix(tt.encoding, "\n"); ok {
				req.Header.Add("Content-Type", ct)
			} else if tt.encoding != "" {
				for _, v := range strings.Split(tt.encoding, "\n") {
					req.Header.Add("Content-Encoding", v)
				}
			}
			w := serve(e, req)
			if tt.typ == "" {
				if w.Code != tt.status {
					t.Errorf("status = %d, want %d: %s", w.Code, tt.status, w.Body)
				}
				return
			}
			wantProblem(t, w, tt.status, tt.typ)
			if store.calls.Load() != 0 {
				t.Error("the handler ran for input refused before it")
			}
		})
	}
}

func TestAccessLog(t *testing.T) {
	e, logs := newServer(t, &widgets{err: errNotFound}, nil)

	req := httptest.NewRequest(http.MethodGet, "/v1/widgets/abc", nil)
	req.Header.Set(server.RequestIDHeader, "req-access")
	// Not trusted: the server trusts no proxy, so the socket address wins.
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	w := serve(e, req)
	serve(e, httptest.NewRequest(http.MethodGet, "/nope", nil))
	serve(e, httptest.NewRequest(http.MethodGet, "/livez", nil))

	recs := logs.Records(t, "request")
	if len(recs) != 2 {
		t.Fatalf("got %d access log records, want 2 (/livez is not logged): %v", len(recs), recs)
	}
	r := recs[0]
	want := map[string]any{
		"level":      "INFO",
		"method":     "GET",
		"route":      "/v1/widgets/:id", // the template, not /v1/widgets/abc
		"status":     404.0,
		"bytes":      float64(w.Body.Len()),
		"request_id": "req-access",
		"client_ip":  "192.0.2.1", // httptest's RemoteAddr
	}
	for k, v := range want {
		if r[k] != v {
			t.Errorf("%s = %v (%T), want %v", k, r[k], r[k], v)
		}
	}
	if d, ok := r["duration_ms"].(float64); !ok || d < 0 {
		t.Errorf("duration_ms = %v, want a non-negative number", r["duration_ms"])
	}
	if recs[1]["route"] != "" || recs[1]["status"] != 404.0 {
		t.Errorf("unmatched request logged as %v, want route \"\" and status 404", recs[1])
	}
}

func TestHandlerLogsCarryRequestID(t *testing.T) {
	e, logs := newServer(t, &widgets{err: errors.New("database is on fire")}, nil)
	req := httptest.NewRequest(http.MethodPost, "/v1/widgets", strings.NewReader(`{"title":"x"}`))
	req.Header.Set("Content-Type", "application/json")
	w := serve(e, req)
	wantProblem(t, w, http.StatusInternalServerError, problem.TypeInternal)
	if strings.Contains(w.Body.String(), "fire") {
		t.Errorf("store error leaked: %s", w.Body)
	}

	recs := logs.Records(t, "widget store failed")
	if len(recs) != 1 {
		t.Fatalf("got %d store failure records, want 1", len(recs))
	}
	if id := w.Header().Get(server.RequestIDHeader); recs[0]["request_id"] != id {
		t.Errorf("handler log request_id = %v, want %s", recs[0]["request_id"], id)
	}
}

func TestLivez(t *testing.T) {
	e, _ := newServer(t, &widgets{err: errors.New("store down")}, nil)
	w := serve(e, httptest.NewRequest(http.MethodGet, "/livez", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("status = %d", w.Code)
	}
	var body map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body["status"] != "ok" || body["version"] != "v1.2.3" {
		t.Errorf("body = %v", body)
	}
	if w.Header().Get(server.RequestIDHeader) == "" {
		t.Error("/livez has no X-Request-ID")
	}
}

func TestNewDefaults(t *testing.T) {
	// Every option may be left out: no logger, body limit, alerts or
	// resources. Such a server still answers its probe, and 404 elsewhere.
	e := server.New(server.Options{})
	if w := serve(e, httptest.NewRequest(http.MethodGet, "/livez", nil)); w.Code != http.StatusOK {
		t.Errorf("livez = %d", w.Code)
	}
	wantProblem(t, serve(e, httptest.NewRequest(http.MethodGet, "/v1/widgets", nil)), http.StatusNotFound, problem.TypeNotFound)
	if gin.Mode() != gin.ReleaseMode {
		t.Errorf("gin mode = %s, want release", gin.Mode())
	}
}

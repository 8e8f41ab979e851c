package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prodready/service/internal/cache"
	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/database"
	"github.com/prodready/service/internal/logging"
	"github.com/prodready/service/internal/resource"
	"github.com/prodready/service/internal/resources"
	"github.com/prodready/service/internal/server"
	"github.com/prodready/service/internal/servicetest"
)

const fuzzToken = "fuzz-status-token-0123456789"

// fuzzMethods are the methods a fuzz input picks from by its first byte.
var fuzzMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions, "PROPFIND", "TRACE",
}

// FuzzHTTP sends arbitrary requests (method, path, query string, one header,
// the content type, the body) to the real engine: the notes API over
// SQLite in a temporary directory, the probes and the status route, wired
// as serve wires them. Whatever a client sends, the answer is never a 5xx,
// and every error is application/problem+json with its status, except the
// status route's, which is application/health+json. Only requests the
// net/http server itself would pass on are tried (a parsable request
// target, legal header bytes): what it refuses never reaches the handlers.
//
// The seeds, a hostile corpus (NUL, invalid UTF-8, huge numbers, odd
// content types, path traversal, control characters), run with every
// `go test`; `make fuzz` explores beyond them.
func FuzzHTTP(f *testing.F) {
	fuzzHTTP(f, fuzzEngine(f, "", ""))
}

// FuzzHTTPPostgreSQL is FuzzHTTP against the production stack: PostgreSQL
// (TEST_DATABASE_URL, a schema of its own) and Redis (TEST_REDIS_URL) behind
// the cache's breaker, as serve wires them. What one database accepts and
// the other refuses (NUL bytes, invalid UTF-8, out-of-range numbers, id and
// cursor types) is where a 5xx would hide. `make fuzz` runs it when both
// answer.
func FuzzHTTPPostgreSQL(f *testing.F) {
	fuzzHTTP(f, fuzzEngine(f, servicetest.PostgresURL(f), servicetest.URL(f, "TEST_REDIS_URL", "Redis")))
}

// fuzzHTTP seeds f with the hostile corpus and checks every answer of h.
func fuzzHTTP(f *testing.F, h http.Handler) {
	note := `{"title":"t","body":"b"}`
	for _, s := range []struct {
		method            byte
		path, query       string
		header, value     string
		contentType, body string
	}{
		{2, "v1/notes", "", "", "", "application/json", note},
		{2, "v1/notes", "", "", "", "application/json", `{"title":"a\u0000b"}`},
		{2, "v1/notes", "", "", "", "application/json", "{\"title\":\"a\x00b\"}"},
		{2, "v1/notes", "", "", "", "application/json", "{\"title\":\"\xff\xfe\",\"body\":\"\xc3\x28\"}"},
		{2, "v1/notes", "", "", "", "application/json", `{"title":"\ud800","body":"x"}`},
		{2, "v1/notes", "", "", "", "application/json", `{"title":"x","body":"y","version":1e400}`},
		{2, "v1/notes", "", "", "", "application/json", `{"title":99999999999999999999999999999}`},
		{2, "v1/notes", "", "", "", "application/json", `[` + strings.Repeat(`[`, 5000)},
		{2, "v1/notes", "", "", "", "text/plain", note},
		{2, "v1/notes", "", "", "", "application/json; charset=utf-16", note},
		{2, "v1/notes", "", "", "", "multipart/form-data; boundary=x", "--x\r\n\r\n--x--"},
		{2, "v1/notes", "", "", "", "application/json;;;=", note},
		{2, "v1/notes", "", "", "", "", ""},
		{2, "v1/notes", "", "", "", "application/json", "\x00\x00\x00"},
		{0, "v1/notes/%00", "", "", "", "", ""},
		{0, "v1/notes/%ff%fe", "", "", "", "", ""},
		{0, "v1/notes/" + strings.Repeat("9", 300), "", "", "", "", ""},
		{0, "v1/notes/../../etc/passwd", "", "", "", "", ""},
		{0, "v1/notes/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "", "", "", "", ""},
		{0, "v1/notes/..%2f..%2f", "", "", "", "", ""},
		{0, "v1/%0d%0aSet-Cookie:%20x=1", "", "", "", "", ""},
		{0, "v1/notes", "cursor=%00", "", "", "", ""},
		{0, "v1/notes", "cursor=%ff", "", "", "", ""},
		{0, "v1/notes", "limit=99999999999999999999999", "", "", "", ""},
		{0, "v1/notes", "limit=-1&limit=abc", "", "", "", ""},
		{0, "v1/notes", "limit=1e400&cursor=" + strings.Repeat("A", 2000), "", "", "", ""},
		{0, "v1/notes", "%zz=%", "", "", "", ""},
		{3, "v1/notes/1", "", "If-Match", `"\x01"`, "application/json", note},
		{3, "v1/notes/1", "", "If-Match", "W/\"99999999999999999999999\"", "application/json", note},
		{5, "v1/notes/%01", "", "", "", "", ""},
		{4, "v1/notes/1", "", "", "", "application/merge-patch+json", note},
		{0, "status", "", "Authorization", "Bearer \xff\xfe", "", ""},
		{0, "status", "token=%00", "Authorization", "Basic Og==", "", ""},
		{2, "status", "", "", "", "application/json", note},
		{0, "readyz", "", "X-Request-ID", "\x7f\x80", "", ""},
		{0, "livez", "", "X-Request-ID", strings.Repeat("r", 500), "", ""},
		{6, "v1/notes", "", "Origin", "null", "", ""},
		{7, "v1/notes", "", "", "", "", ""},
		{0, "%2e%2e/%2e%2e/", "", "", "", "", ""},
		{0, "debug/panic", "", "", "", "", ""},
		// Found by FuzzHTTP (testdata/fuzz/FuzzHTTP): refusals on /status are health+json.
		{8, "status", "", "0", "0", "", "0"},
		{0, "status", "%", "0", "0", "0", ""},
		{4, "status", "%", "0", "0", "0", ""},
	} {
		f.Add(s.method, s.path, s.query, s.header, s.value, s.contentType, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, method byte, path, query, header, value, contentType string, body []byte) {
		target := "/" + strings.TrimPrefix(path, "/")
		if query != "" {
			target += "?" + query
		}
		if !validTarget(target) || !validHeaderName(header) || !validHeaderValue(value) || !validHeaderValue(contentType) {
			return // the HTTP server answers these itself, before any handler
		}
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		m := fuzzMethods[int(method)%len(fuzzMethods)]
		req := httptest.NewRequestWithContext(context.Background(), m, "/", bytes.NewReader(body))
		req.URL, req.RequestURI = u, target
		if header != "" {
			req.Header.Set(header, value)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if header == "" || !strings.EqualFold(header, "Authorization") {
			req.Header.Set("Authorization", "Bearer "+fuzzToken)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)

		if w.Code >= 500 {
			t.Fatalf("%s %q: %d %s", m, target, w.Code, w.Body.String())
		}
		if w.Code < 400 {
			return
		}
		want := "application/problem+json"
		if u.Path == "/status" {
			want = "application/health+json"
		}
		if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, want) {
			t.Fatalf("%s %q: %d with Content-Type %q, want %s; body %q", m, target, w.Code, ct, want, w.Body.String())
		}
		if m == http.MethodHead || want != "application/problem+json" {
			return
		}
		var p struct {
			Status int    `json:"status"`
			Type   string `json:"type"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Status != w.Code || p.Type == "" {
			t.Fatalf("%s %q: %d problem body %q (%v)", m, target, w.Code, w.Body.String(), err)
		}
	})
}

// fuzzEngine is the engine serve builds in development, minus the listener
// and the routes that fail on purpose: SQLite in a temporary directory and
// the in-memory cache, or, given their URLs, PostgreSQL and Redis behind the
// breaker; a status token either way.
func fuzzEngine(tb testing.TB, databaseURL, redisURL string) http.Handler {
	tb.Helper()
	cfg := config.Default()
	cfg.Environment = config.Development
	cfg.Database.SQLitePath = filepath.Join(tb.TempDir(), "notes.db")
	cfg.Database.URL = databaseURL
	cfg.Status.Tokens = []string{fuzzToken}
	cfg.Status.CacheTTL = time.Minute
	cfg.Log.Stdout.Enabled = false
	logs, err := logging.Setup(logging.Options{Config: cfg.Log, Stdout: io.Discard, Stderr: io.Discard})
	if err != nil {
		tb.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	db, err := database.Open(ctx, dbOptions(cfg))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	if _, err := database.Migrate(ctx, db, logger, resourceMigrations()...); err != nil {
		tb.Fatal(err)
	}
	var c cache.Cache = cache.NewMemory(cfg.Cache.MemoryMaxEntries)
	if redisURL != "" {
		r, err := cache.NewRedis(ctx, redisURL, cache.RedisOptions{KeyPrefix: fmt.Sprintf("fuzz-%d:", time.Now().UnixNano()), Timeout: time.Second})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { r.Close() })
		c = cache.NewBreaker(r, cache.BreakerOptions{Threshold: cfg.Cache.FailureThreshold, Cooldown: cfg.Cache.Cooldown, Fallback: c})
	}
	rep, err := newAlertReporter(cfg, logger) // e-mail off: a reporter that does nothing
	if err != nil {
		tb.Fatal(err)
	}
	routes, checks := resources.All().Mount(resource.Deps{Config: cfg, DB: db, Cache: c, Logger: logger})
	return server.New(server.Options{
		Logger: logger, Version: "fuzz",
		Health: healthHandler(cfg, db, c, logs, logger, nil, rep, checks...),
		Routes: routes,
	})
}

// validTarget is what net/http accepts as a request target: no space or
// control byte (the request line could not carry it).
func validTarget(s string) bool {
	for i := range len(s) {
		if s[i] <= ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// validHeaderName is an RFC 9110 token (empty means "no header").
func validHeaderName(s string) bool {
	for i := range len(s) {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// validHeaderValue is what net/http's server accepts in a field value: no
// control byte but horizontal tab, and no leading or trailing whitespace
// (it trims those).
func validHeaderValue(s string) bool {
	for i := range len(s) {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return strings.TrimSpace(s) == s
}

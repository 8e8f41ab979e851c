package notes_test

// Hostile input against the real stores: NUL and other control characters,
// invalid UTF-8 and unpaired surrogates, malformed ids and cursors. Each
// used to reach the SQL and come back as a 500 (or, for invalid UTF-8, be
// silently changed to U+FFFD and stored); each must now be a 4xx that names
// what is wrong, and nothing may be stored.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/prodready/service/internal/database"
	"github.com/prodready/service/internal/logging"
	"github.com/prodready/service/internal/notes"
	"github.com/prodready/service/internal/problem"
	"github.com/prodready/service/internal/server"
	"github.com/prodready/service/internal/servicetest"
)

func TestHostileInput_SQLite(t *testing.T) {
	runHostileInput(t, openStore(t, database.Options{SQLitePath: filepath.Join(t.TempDir(), "notes.db"), BusyTimeout: 5 * time.Second}))
}

func TestHostileInput_PostgreSQL(t *testing.T) {
	runHostileInput(t, openStore(t, database.Options{URL: servicetest.PostgresURL(t), MaxOpenConns: 4}))
}

func runHostileInput(t *testing.T, store notes.Store) {
	h := server.New(server.Options{Logger: slog.New(slog.DiscardHandler), Routes: []func(gin.IRouter){notes.Routes(store, notes.APIOptions{})}})
	do := func(method, target, body string, header ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, target, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	kept := do("POST", "/v1/notes", `{"title":"kept","body":"line one\n\tline two\r\n"}`)
	if kept.Code != http.StatusCreated {
		t.Fatalf("a body with tab, newline and carriage return: %d %s", kept.Code, kept.Body)
	}
	var note notes.Note
	_ = json.Unmarshal(kept.Body.Bytes(), &note)
	idPath := "/v1/notes/" + note.ID

	tests := []struct {
		name, method, target, body string
		header                     []string
		status                     int
		fields                     []string // fields the validation problem must name
	}{
		{"NUL in a title", "POST", "/v1/notes", `{"title":"a\u0000b"}`, nil, 400, []string{"title"}},
		{"NUL in a body", "POST", "/v1/notes", `{"title":"t","body":"x\u0000"}`, nil, 400, []string{"body"}},
		{"escape character in a title", "POST", "/v1/notes", `{"title":"\u001b[31mred"}`, nil, 400, []string{"title"}},
		{"newline in a title", "POST", "/v1/notes", `{"title":"two\nlines"}`, nil, 400, []string{"title"}},
		{"C1 control in a body", "POST", "/v1/notes", `{"title":"t","body":"\u0085"}`, nil, 400, []string{"body"}},
		{"invalid UTF-8 bytes in a title", "POST", "/v1/notes", "{\"title\":\"caf\xe9\"}", nil, 400, []string{"title"}},
		{"invalid UTF-8 bytes in a body", "POST", "/v1/notes", "{\"title\":\"t\",\"body\":\"\xff\xfe\"}", nil, 400, []string{"body"}},
		{"an unpaired surrogate escape", "POST", "/v1/notes", `{"title":"t","body":"\ud800"}`, nil, 400, []string{"body"}},
		{"a low surrogate first", "POST", "/v1/notes", `{"title":"\udc00\ud800"}`, nil, 400, []string{"title"}},
		{"valid escapes beside a NUL", "POST", "/v1/notes", `{"title":"caf\u00e9 \ud83d\ude00","body":"x\u0000"}`, nil, 400, []string{"body"}},
		{"a null title", "POST", "/v1/notes", `{"title":null,"body":"b"}`, nil, 400, []string{"title"}},
		{"both fields at once", "POST", "/v1/notes", "{\"title\":\"\\u0000\",\"body\":\"\xc3\"}", nil, 400, []string{"body", "title"}},
		{"NUL in an update", "PUT", idPath, `{"title":"a\u0000"}`, []string{"If-Match", "*"}, 400, []string{"title"}},
		{"NUL in an id", "GET", "/v1/notes/a%00b", "", nil, 404, nil},
		{"invalid UTF-8 in an id", "GET", "/v1/notes/%FF%FE", "", nil, 404, nil},
		{"a control character in an id", "DELETE", "/v1/notes/%1B", "", nil, 404, nil},
		{"an id far too long", "GET", "/v1/notes/" + strings.Repeat("a", 4000), "", nil, 404, nil},
		{"NUL in the id of an update", "PUT", "/v1/notes/%00", `{"title":"t"}`, []string{"If-Match", "*"}, 404, nil},
		{"NUL in a cursor", "GET", "/v1/notes?cursor=%00", "", nil, 400, []string{"cursor"}},
		{"invalid UTF-8 in a cursor", "GET", "/v1/notes?cursor=%C3%28", "", nil, 400, []string{"cursor"}},
		{"a cursor naming no note", "GET", "/v1/notes?cursor=zzzz", "", nil, 200, nil}, // the store's contract: start after it
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(tt.method, tt.target, tt.body, tt.header...)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.status < 400 {
				return
			}
			if ct := w.Header().Get("Content-Type"); ct != problem.ContentType {
				t.Errorf("Content-Type %q", ct)
			}
			var p problem.Problem
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
				t.Fatalf("not JSON: %s", w.Body)
			}
			var got []string
			for _, e := range p.Errors {
				got = append(got, e.Field)
				if e.Message == "" {
					t.Errorf("field %s has no message", e.Field)
				}
			}
			if fmt.Sprint(sortedCopy(got)) != fmt.Sprint(tt.fields) {
				t.Errorf("fields %v, want %v (%s)", got, tt.fields, w.Body)
			}
		})
	}

	// Nothing was stored or changed: only the one good note, as created.
	w := do("GET", "/v1/notes", "")
	var page notes.Page
	if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil || len(page.Items) != 1 || page.Items[0] != note {
		t.Errorf("after the hostile requests the store holds %s, want only %+v", w.Body, note)
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// recordedAlerts counts what the server reports, to prove a hang-up is not.
type recordedAlerts struct {
	mu     sync.Mutex
	errors []server.ErrorReport
}

func (a *recordedAlerts) Scope(ctx context.Context) (context.Context, func()) { return ctx, func() {} }
func (a *recordedAlerts) ReportPanic(context.Context, server.PanicReport)     {}
func (a *recordedAlerts) ReportError(_ context.Context, e server.ErrorReport) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.errors = append(a.errors, e)
}

// TestClientHangUp_PostgreSQL: a client that hangs up while its update waits
// on a row lock cancels the query; the request is logged at info with
// status 499, nothing is logged at error, and nothing is reported for mail.
func TestClientHangUp_PostgreSQL(t *testing.T) {
	dbURL := servicetest.PostgresURL(t)
	store := openStore(t, database.Options{URL: dbURL, MaxOpenConns: 4})
	logs := &servicetest.LogBuffer{}
	logger, _, err := logging.New(logs, logging.Options{Level: "info", Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	alerts := &recordedAlerts{}
	srv := httptest.NewServer(server.New(server.Options{Logger: logger, Alerts: alerts,
		Routes: []func(gin.IRouter){notes.Routes(store, notes.APIOptions{Logger: logger})}}))
	defer srv.Close()

	n, err := store.Create(t.Context(), notes.Input{Title: "locked"})
	if err != nil {
		t.Fatal(err)
	}
	// Another session holds the row, so the update has to wait for it.
	locker, unlock := servicetest.HoldInSession(t, dbURL, "SELECT id FROM notes WHERE id = $1 FOR UPDATE", n.ID)

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	marker := fmt.Sprintf("hang-up-%d", time.Now().UnixNano())
	body := `{"title":"` + marker + `"}`
	fmt.Fprintf(conn, "PUT /v1/notes/%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nIf-Match: *\r\nContent-Length: %d\r\n\r\n%s",
		n.ID, len(body), body)
	// Wait until the update is blocked on the lock, then hang up.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		if err := locker.QueryRowContext(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE '%' || $1 || '%'`, marker).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the update never waited on the lock")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = conn.Close()

	var rec map[string]any
	for deadline = time.Now().Add(10 * time.Second); rec == nil; time.Sleep(20 * time.Millisecond) {
		for _, r := range logs.Records(t, "request") {
			rec = r
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access log record after the hang-up: %s", logs)
		}
	}
	if rec["status"] != float64(problem.StatusClientClosedRequest) || rec["level"] != "INFO" {
		t.Errorf("access log %v, want status 499 at INFO", rec)
	}
	for _, r := range logs.Records(t, "") {
		if r["level"] == "ERROR" || r["level"] == "WARN" {
			t.Errorf("a hang-up was logged as a failure: %v", r)
		}
	}
	alerts.mu.Lock()
	if len(alerts.errors) != 0 {
		t.Errorf("a hang-up was reported for mail: %+v", alerts.errors)
	}
	alerts.mu.Unlock()

	// The store keeps serving. (Whether the abandoned update was applied
	// once the lock went is PostgreSQL's business: the driver dropped the
	// connection, which a backend waiting on a lock does not notice. The
	// client never got an answer, so it must GET before retrying anyway.)
	unlock()
	if _, err := store.Get(t.Context(), n.ID); err != nil {
		t.Errorf("after the hang-up the store fails: %v", err)
	}
}

// TestRoutes_EveryGETAnswersHEAD guards the rule for routes added later.
func TestRoutes_EveryGETAnswersHEAD(t *testing.T) {
	e := server.New(server.Options{Logger: slog.New(slog.DiscardHandler), Routes: []func(gin.IRouter){notes.Routes(NewMockStore(nil), notes.APIOptions{})}})
	head := map[string]bool{}
	for _, r := range e.Routes() {
		if r.Method == http.MethodHead {
			head[r.Path] = true
		}
	}
	for _, r := range e.Routes() {
		if r.Method == http.MethodGet && !head[r.Path] {
			t.Errorf("GET %s has no HEAD route", r.Path)
		}
	}
}

package notes_test

// Tests for the HTTP handlers in api.go. They drive the real server
// (server.New: routing, request IDs, body limit, problem responses) with a
// gomock Store, so each case reads as "this request, this store behaviour,
// this response". Helpers are prefixed with api to stay clear of the other
// test files in this package.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/mock/gomock"

	"github.com/prodready/service/internal/logging"
	"github.com/prodready/service/internal/notes"
	"github.com/prodready/service/internal/problem"
	"github.com/prodready/service/internal/server"
	"github.com/prodready/service/internal/servicetest"
)

// Small limits so the edge cases are cheap to reach.
const (
	apiMaxBody     = 16 << 10
	apiDefaultPage = 3
	apiMaxPage     = 5
)

// apiNote is a stored note as the mock returns it.
var apiNote = notes.Note{
	ID:        "0190c6f2-aaaa-7bbb-8ccc-000000000001",
	Title:     "Groceries",
	Body:      "milk",
	Version:   3,
	CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	UpdatedAt: time.Date(2025, 1, 3, 3, 4, 5, 0, time.UTC),
}

const apiPath = "/v1/notes/" + "0190c6f2-aaaa-7bbb-8ccc-000000000001"

// apiSecret is in every injected store error; it must never reach a client.
const apiSecret = "dial tcp 10.1.2.3:5432: connection refused"

var errAPIStore = errors.New(apiSecret)

// apiCase is one request against the server and what must come back.
type apiCase struct {
	name    string
	method  string
	target  string
	body    string
	header  map[string]string // Content-Type defaults to application/json when body is set
	options func(*notes.APIOptions)

	chunked    bool // send the body without a Content-Length, as a chunked upload arrives
	brokenBody bool // the body fails to read after body
	expect     func(m *MockStoreMockRecorder)
	status     int
	problem    string                                                                     // problem type URI when the response is an error
	check      func(t *testing.T, w *httptest.ResponseRecorder, l *servicetest.LogBuffer) // extra assertions
}

func apiRun(t *testing.T, cases []apiCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctrl := gomock.NewController(t) // fails the test on unexpected or missing calls
			store := NewMockStore(ctrl)
			if tc.expect != nil {
				tc.expect(store.EXPECT())
			}
			logs := &servicetest.LogBuffer{}
			logger, _, err := logging.New(logs, logging.Options{Level: "debug", Format: "json"})
			if err != nil {
				t.Fatal(err)
			}
			o := notes.APIOptions{Logger: logger, DefaultPageSize: apiDefaultPage, MaxPageSize: apiMaxPage}
			if tc.options != nil {
				tc.options(&o)
			}
			h := server.New(server.Options{
				Logger:       logger,
				MaxBodyBytes: apiMaxBody,
				Routes:       []func(gin.IRouter){notes.Routes(store, o)},
			})

			req := httptest.NewRequest(tc.method, tc.target, nil)
			if tc.body != "" || tc.brokenBody {
				var body io.Reader = strings.NewReader(tc.body)
				if tc.brokenBody {
					// The connection fails mid-body; the error text is internal.
					body = io.MultiReader(body, iotest.ErrReader(errAPIStore))
				}
				req = httptest.NewRequest(tc.method, tc.target, body)
				req.Header.Set("Content-Type", "application/json")
			}
			if tc.chunked {
				// What the server sees for Transfer-Encoding: chunked: no
				// length to check up front.
				req.ContentLength = -1
			}
			for k, v := range tc.header {
				if v == "" {
					req.Header.Del(k)
				} else {
					req.Header.Set(k, v)
				}
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)

			if w.Code != tc.status {
				t.Fatalf("status = %d, want %d; body: %s", w.Code, tc.status, w.Body)
			}
			if strings.Contains(w.Body.String(), apiSecret) {
				t.Errorf("internal error text leaked to the client: %s", w.Body)
			}
			if tc.problem != "" {
				apiCheckProblem(t, w, req, tc.problem)
			}
			if tc.check != nil {
				tc.check(t, w, logs)
			}
		})
	}
}

// apiCheckProblem asserts the stable problem+json fields and returns the problem.
func apiCheckProblem(t *testing.T, w *httptest.ResponseRecorder, req *http.Request, wantType string) problem.Problem {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	var p problem.Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, w.Body)
	}
	if p.Type != wantType {
		t.Errorf("type = %q, want %q", p.Type, wantType)
	}
	if p.Title == "" {
		t.Error("title is empty")
	}
	if p.Status != w.Code {
		t.Errorf("status member = %d, HTTP status %d", p.Status, w.Code)
	}
	if p.Instance != req.URL.Path {
		t.Errorf("instance = %q, want %q", p.Instance, req.URL.Path)
	}
	if rid := w.Header().Get("X-Request-ID"); p.RequestID == "" || p.RequestID != rid {
		t.Errorf("request_id = %q, X-Request-ID header = %q; want equal and set", p.RequestID, rid)
	}
	return p
}

func apiProblemOf(t *testing.T, w *httptest.ResponseRecorder) problem.Problem {
	t.Helper()
	var p problem.Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, w.Body)
	}
	return p
}

// apiDetailHas checks the problem's detail mentions want.
func apiDetailHas(want string) func(*testing.T, *httptest.ResponseRecorder, *servicetest.LogBuffer) {
	return func(t *testing.T, w *httptest.ResponseRecorder, _ *servicetest.LogBuffer) {
		t.Helper()
		if d := apiProblemOf(t, w).Detail; !strings.Contains(d, want) {
			t.Errorf("detail %q does not mention %q", d, want)
		}
	}
}

// apiFieldErrors checks the problem lists exactly these fields as invalid.
func apiFieldErrors(fields ...string) func(*testing.T, *httptest.ResponseRecorder, *servicetest.LogBuffer) {
	return func(t *testing.T, w *httptest.ResponseRecorder, _ *servicetest.LogBuffer) {
		t.Helper()
		p := apiProblemOf(t, w)
		if p.Title != "Validation failed" {
			t.Errorf("title = %q, want Validation failed", p.Title)
		}
		var got []string
		for _, e := range p.Errors {
			got = append(got, e.Field)
			if e.Message == "" {
				t.Errorf("field %q has no message", e.Field)
			}
		}
		if strings.Join(got, ",") != strings.Join(fields, ",") {
			t.Errorf("invalid fields = %v, want %v", got, fields)
		}
	}
}

// apiNoteBody checks the response is the note with its version as ETag.
func apiNoteBody(want notes.Note) func(*testing.T, *httptest.ResponseRecorder, *servicetest.LogBuffer) {
	return func(t *testing.T, w *httptest.ResponseRecorder, _ *servicetest.LogBuffer) {
		t.Helper()
		var got notes.Note
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatalf("body is not a note: %v: %s", err, w.Body)
		}
		if got != want {
			t.Errorf("note = %+v\nwant   %+v", got, want)
		}
		if et, wantTag := w.Header().Get("ETag"), fmt.Sprintf(`"%d"`, want.Version); et != wantTag {
			t.Errorf("ETag = %s, want %s", et, wantTag)
		}
	}
}

// apiStoreErrorLogged checks the store failure went to the log, at error
// level, with the request's ID, and only there.
func apiStoreErrorLogged(t *testing.T, w *httptest.ResponseRecorder, l *servicetest.LogBuffer) {
	t.Helper()
	recs := l.Records(t, "notes store failed")
	if len(recs) != 1 {
		t.Fatalf("got %d 'notes store failed' records, want 1", len(recs))
	}
	r := recs[0]
	if r["level"] != "ERROR" || r["error"] != apiSecret || r["request_id"] != w.Header().Get("X-Request-ID") {
		t.Errorf("log record = %v; want level ERROR, the error text and request_id %s", r, w.Header().Get("X-Request-ID"))
	}
}

func TestAPICreate(t *testing.T) {
	created := apiNote
	created.Version = 1
	good := `{"title":"Groceries","body":"milk"}`
	wantIn := notes.Input{Title: "Groceries", Body: "milk"}

	apiRun(t, []apiCase{
		{
			name: "201 with Location, ETag and the note", method: "POST", target: "/v1/notes", body: good,
			expect: func(m *MockStoreMockRecorder) { m.Create(gomock.Any(), wantIn).Return(created, nil) },
			status: http.StatusCreated,
			check: func(t *testing.T, w *httptest.ResponseRecorder, l *servicetest.LogBuffer) {
				if got := w.Header().Get("Location"); got != apiPath {
					t.Errorf("Location = %q, want %q", got, apiPath)
				}
				if got := w.Header().Get("ETag"); got != `"1"` {
					t.Errorf(`ETag = %s, want "1"`, got)
				}
				apiNoteBody(created)(t, w, l)
			},
		},
		{
			name: "charset=utf-8 is accepted", method: "POST", target: "/v1/notes", body: good,
			header: map[string]string{"Content-Type": "application/json; charset=UTF-8"},
			expect: func(m *MockStoreMockRecorder) { m.Create(gomock.Any(), wantIn).Return(created, nil) },
			status: http.StatusCreated,
		},
		{
			name: "415 without Content-Type", method: "POST", target: "/v1/notes", body: good,
			header: map[string]string{"Content-Type": ""},
			status: http.StatusUnsupportedMediaType, problem: problem.TypeUnsupportedMediaType,
			check: apiDetailHas("application/json"),
		},
		{
			name: "415 for form data", method: "POST", target: "/v1/notes", body: "title=x",
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
			status: http.StatusUnsupportedMediaType, problem: problem.TypeUnsupportedMediaType,
		},
		{
			name: "415 for a charset other than UTF-8", method: "POST", target: "/v1/notes", body: good,
			header: map[string]string{"Content-Type": "application/json; charset=latin1"},
			status: http.StatusUnsupportedMediaType, problem: problem.TypeUnsupportedMediaType,
			check: apiDetailHas("UTF-8"),
		},
		{
			name: "400 for malformed JSON names the position", method: "POST", target: "/v1/notes",
			body:   `{"title" "x"}`,
			status: http.StatusBadRequest, problem: problem.TypeBadRequest,
			check: apiDetailHas("at byte 10"),
		},
		{
			name: "400 for truncated JSON", method: "POST", target: "/v1/notes", body: `{"title":"x"`,
			status: http.StatusBadRequest, problem: problem.TypeBadRequest,
			check: apiDetailHas("before the JSON object is complete"),
		},
		{
			name: "400 for an empty body", method: "POST", target: "/v1/notes",
			header: map[string]string{"Content-Type": "application/json"},
			status: http.StatusBadRequest, problem: problem.TypeBadRequest,
			check: apiDetailHas("empty"),
		},
		{
			name: "400 for an unknown field names it", method: "POST", target: "/v1/notes",
			body:   `{"title":"x","colour":"red"}`,
			status: http.StatusBadRequest, problem: problem.TypeBadRequest,
			check: apiDetailHas(`unknown field "colour"`),
		},
		{
			// encoding/json would take "Title" for title, and invalid UTF-8
			// in it would slip past the exact-name check of badEncoding.
			name: "400 for a field name in another case", method: "POST", target: "/v1/notes",
			body:   "{\"Title\":\"bad\xff\",\"body\":\"b\"}",
			status: http.StatusBadRequest, problem: problem.TypeBadRequest,
			check: apiDetailHas(`unknown field "Title": field names are case-sensitive; did you mean "title"?`),
		},
		{
			name: "400 for a repeated field (which would win)", method: "POST", target: "/v1/notes",
			body:   `{"title":"a","body":"","title":"b"}`,
			status: http.StatusBadRequest, problem: problem.TypeBadRequest,
			check: apiDetailHas(`field "title" appears more than once`),
		},
		{
			name: "400 for a field repeated in another case", method: "POST", target: "/v1/notes",
			body:   `{"title":"a","TITLE":"b","body":""}`,
			status: http.StatusBadRequest, problem: problem.TypeBadRequest,
			check: apiDetailHas(`field "TITLE" appears more than once`),
		},
		{
			name: "400 for a field of the wrong type, without Go type names", method: "POST", target: "/v1/notes",
			body:   `{"title":42}`,
			status: http.StatusBadRequest, problem: problem.TypeBadRequest,
			check: func(t *testing.T, w *httptest.ResponseRecorder, l *servicetest.LogBuffer) {
				apiDetailHas(`field "title" must be a string, not a JSON number`)(t, w, l)
				if strings.Contains(w.Body.String(), "Input") {
					t.Errorf("detail names a Go type: %s", w.Body)
				}
			},
		},
		{
			name: "400 for an array instead of an object", method: "POST", target: "/v1/notes", body: `[]`,
			status: http.StatusBadRequest, problem: problem.TypeBadRequest,
			check: apiDetailHas("must be a JSON object"),
		},
		{
			name: "400 for a second JSON value after the object", method: "POST", target: "/v1/notes",
			body:   good + ` {"title":"again"}`,
			status: http.StatusBadRequest, problem: problem.TypeBadRequest,
			check: apiDetailHas("single JSON object"),
		},
		{
			name: "400 for a stray brace after the object", method: "POST", target: "/v1/notes", body: good + `}`,
			status: http.StatusBadRequest, problem: problem.TypeBadRequest,
			check: apiDetailHas("single JSON object"),
		},
		{
			name: "400 validation lists every invalid field", method: "POST", target: "/v1/notes",
			body:   `{"title":"  ","body":"` + strings.Repeat("b", notes.MaxBodyLen+1) + `"}`,
			status: http.StatusBadRequest, problem: problem.TypeValidation,
			check: apiFieldErrors("title", "body"),
		},
		{
			name: "413 for a body over the limit", method: "POST", target: "/v1/notes",
			body:   `{"title":"x","body":"` + strings.Repeat("b", apiMaxBody) + `"}`,
			status: http.StatusRequestEntityTooLarge, problem: problem.TypePayloadTooLarge,
		},
		{
			name: "413 for a chunked body over the limit", method: "POST", target: "/v1/notes", chunked: true,
			body:   `{"title":"x","body":"` + strings.Repeat("b", apiMaxBody) + `"}`,
			status: http.StatusRequestEntityTooLarge, problem: problem.TypePayloadTooLarge,
		},
		{
			name: "413 when data after the object goes over the limit", method: "POST", target: "/v1/notes",
			chunked: true, body: good + strings.Repeat(" ", apiMaxBody),
			status: http.StatusRequestEntityTooLarge, problem: problem.TypePayloadTooLarge,
		},
		{
			name: "400 without internals when the body cannot be read", method: "POST", target: "/v1/notes",
			body: `{"title":`, brokenBody: true,
			status: http.StatusBadRequest, problem: problem.TypeBadRequest,
			check: apiDetailHas("could not be read"),
		},
		{
			name: "500 hides the store error and logs it", method: "POST", target: "/v1/notes", body: good,
			expect: func(m *MockStoreMockRecorder) { m.Create(gomock.Any(), wantIn).Return(notes.Note{}, errAPIStore) },
			status: http.StatusInternalServerError, problem: problem.TypeInternal,
			check: apiStoreErrorLogged,
		},
	})
}

func TestAPIGet(t *testing.T) {
	id := apiNote.ID
	found := func(m *MockStoreMockRecorder) { m.Get(gomock.Any(), id).Return(apiNote, nil) }
	notModified := func(t *testing.T, w *httptest.ResponseRecorder, _ *servicetest.LogBuffer) {
		if w.Body.Len() != 0 {
			t.Errorf("304 has a body: %s", w.Body)
		}
		if got := w.Header().Get("ETag"); got != `"3"` {
			t.Errorf(`ETag = %s, want "3"`, got)
		}
	}

	apiRun(t, []apiCase{
		{
			name: "200 with ETag", method: "GET", target: apiPath,
			expect: found, status: http.StatusOK, check: apiNoteBody(apiNote),
		},
		{
			name: "304 when If-None-Match is the current version", method: "GET", target: apiPath,
			header: map[string]string{"If-None-Match": `"3"`},
			expect: found, status: http.StatusNotModified, check: notModified,
		},
		{
			name: "304 for a weak tag in a list", method: "GET", target: apiPath,
			header: map[string]string{"If-None-Match": `"1", W/"3"`},
			expect: found, status: http.StatusNotModified, check: notModified,
		},
		{
			name: "304 for *", method: "GET", target: apiPath,
			header: map[string]string{"If-None-Match": `*`},
			expect: found, status: http.StatusNotModified, check: notModified,
		},
		{
			name: "200 when If-None-Match is an older version", method: "GET", target: apiPath,
			header: map[string]string{"If-None-Match": `"2"`},
			expect: found, status: http.StatusOK, check: apiNoteBody(apiNote),
		},
		{
			name: "404 for an unknown id", method: "GET", target: "/v1/notes/nope",
			expect: func(m *MockStoreMockRecorder) { m.Get(gomock.Any(), "nope").Return(notes.Note{}, notes.ErrNotFound) },
			status: http.StatusNotFound, problem: problem.TypeNotFound,
			check: apiDetailHas(`"nope"`),
		},
		{
			name: "500 hides the store error and logs it", method: "GET", target: apiPath,
			expect: func(m *MockStoreMockRecorder) { m.Get(gomock.Any(), id).Return(notes.Note{}, errAPIStore) },
			status: http.StatusInternalServerError, problem: problem.TypeInternal,
			check: apiStoreErrorLogged,
		},
	})
}

func TestAPIList(t *testing.T) {
	page := notes.Page{Items: []notes.Note{apiNote}, NextCursor: "cur/2"}

	apiRun(t, []apiCase{
		{
			name: "200 uses the default page size and sends items as [] when empty", method: "GET", target: "/v1/notes",
			expect: func(m *MockStoreMockRecorder) { m.List(gomock.Any(), "", apiDefaultPage).Return(notes.Page{}, nil) },
			status: http.StatusOK,
			check: func(t *testing.T, w *httptest.ResponseRecorder, _ *servicetest.LogBuffer) {
				if got := strings.TrimSpace(w.Body.String()); got != `{"items":[]}` {
					t.Errorf("body = %s, want {\"items\":[]}", got)
				}
				if got := w.Header().Get("Link"); got != "" {
					t.Errorf("Link on the last page: %s", got)
				}
			},
		},
		{
			name: "200 passes limit and cursor and links the next page", method: "GET",
			target: "/v1/notes?limit=5&cursor=cur%2F1",
			expect: func(m *MockStoreMockRecorder) { m.List(gomock.Any(), "cur/1", 5).Return(page, nil) },
			status: http.StatusOK,
			check: func(t *testing.T, w *httptest.ResponseRecorder, _ *servicetest.LogBuffer) {
				var got struct {
					Items      []notes.Note `json:"items"`
					NextCursor string       `json:"next_cursor"`
				}
				if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
					t.Fatal(err)
				}
				if len(got.Items) != 1 || got.Items[0] != apiNote || got.NextCursor != "cur/2" {
					t.Errorf("page = %+v", got)
				}
				want := `</v1/notes?cursor=cur%2F2&limit=5>; rel="next"`
				if link := w.Header().Get("Link"); link != want {
					t.Errorf("Link = %s, want %s", link, want)
				}
			},
		},
		{
			name: "page sizes default to 20 and 100", method: "GET", target: "/v1/notes",
			options: func(o *notes.APIOptions) { o.DefaultPageSize, o.MaxPageSize = 0, 0 },
			expect:  func(m *MockStoreMockRecorder) { m.List(gomock.Any(), "", 20).Return(notes.Page{}, nil) },
			status:  http.StatusOK,
		},
		{
			name: "limit 100 is accepted by default", method: "GET", target: "/v1/notes?limit=100",
			options: func(o *notes.APIOptions) { o.DefaultPageSize, o.MaxPageSize = 0, 0 },
			expect:  func(m *MockStoreMockRecorder) { m.List(gomock.Any(), "", 100).Return(notes.Page{}, nil) },
			status:  http.StatusOK,
		},
		{
			name: "a default page size over the maximum is capped", method: "GET", target: "/v1/notes",
			options: func(o *notes.APIOptions) { o.DefaultPageSize, o.MaxPageSize = 50, 10 },
			expect:  func(m *MockStoreMockRecorder) { m.List(gomock.Any(), "", 10).Return(notes.Page{}, nil) },
			status:  http.StatusOK,
		},
		{
			name: "400 for limit 0", method: "GET", target: "/v1/notes?limit=0",
			status: http.StatusBadRequest, problem: problem.TypeValidation, check: apiFieldErrors("limit"),
		},
		{
			name: "400 for limit over the maximum, not silently clamped", method: "GET", target: "/v1/notes?limit=6",
			status: http.StatusBadRequest, problem: problem.TypeValidation, check: apiFieldErrors("limit"),
		},
		{
			name: "400 for a non-integer limit", method: "GET", target: "/v1/notes?limit=ten",
			status: http.StatusBadRequest, problem: problem.TypeValidation, check: apiFieldErrors("limit"),
		},
		{
			name: "400 for an empty limit", method: "GET", target: "/v1/notes?limit=",
			status: http.StatusBadRequest, problem: problem.TypeValidation, check: apiFieldErrors("limit"),
		},
		{
			name: "400 for a cursor naming no note", method: "GET", target: "/v1/notes?cursor=gone",
			expect: func(m *MockStoreMockRecorder) {
				m.List(gomock.Any(), "gone", apiDefaultPage).Return(notes.Page{}, notes.ErrNotFound)
			},
			status: http.StatusBadRequest, problem: problem.TypeValidation, check: apiFieldErrors("cursor"),
		},
		{
			name: "500 hides the store error and logs it", method: "GET", target: "/v1/notes",
			expect: func(m *MockStoreMockRecorder) {
				m.List(gomock.Any(), "", apiDefaultPage).Return(notes.Page{}, errAPIStore)
			},
			status: http.StatusInternalServerError, problem: problem.TypeInternal,
			check: apiStoreErrorLogged,
		},
	})
}

func TestAPIUpdate(t *testing.T) {
	id := apiNote.ID
	body := `{"title":"Groceries","body":"milk"}`
	in := notes.Input{Title: "Groceries", Body: "milk"}
	updated := apiNote
	updated.Version = 4
	ifMatch := func(v string) map[string]string { return map[string]string{"If-Match": v} }

	apiRun(t, []apiCase{
		{
			name: "200 with the new ETag", method: "PUT", target: apiPath, body: body, header: ifMatch(`"3"`),
			expect: func(m *MockStoreMockRecorder) { m.Update(gomock.Any(), id, in, int64(3)).Return(updated, nil) },
			status: http.StatusOK,
			check: func(t *testing.T, w *httptest.ResponseRecorder, l *servicetest.LogBuffer) {
				apiNoteBody(updated)(t, w, l)
				if got := w.Header().Get("ETag"); got != `"4"` {
					t.Errorf(`ETag = %s, want "4"`, got)
				}
			},
		},
		{
			name: "If-Match * overwrites any version", method: "PUT", target: apiPath, body: body, header: ifMatch(`*`),
			expect: func(m *MockStoreMockRecorder) { m.Update(gomock.Any(), id, in, notes.AnyVersion).Return(updated, nil) },
			status: http.StatusOK,
		},
		{
			name: "428 without If-Match tells the client what to send", method: "PUT", target: apiPath, body: body,
			status: http.StatusPreconditionRequired, problem: problem.TypePreconditionRequired,
			check: apiDetailHas("If-Match"),
		},
		{
			name: "400 for an unquoted If-Match", method: "PUT", target: apiPath, body: body, header: ifMatch(`3`),
			status: http.StatusBadRequest, problem: problem.TypeBadRequest, check: apiDetailHas("If-Match"),
		},
		{
			name: "400 for a weak If-Match", method: "PUT", target: apiPath, body: body, header: ifMatch(`W/"3"`),
			status: http.StatusBadRequest, problem: problem.TypeBadRequest,
		},
		{
			name: "400 for version 0, which would mean any version", method: "PUT", target: apiPath, body: body,
			header: ifMatch(`"0"`),
			status: http.StatusBadRequest, problem: problem.TypeBadRequest,
		},
		{
			name: "400 for an unterminated If-Match", method: "PUT", target: apiPath, body: body, header: ifMatch(`"3`),
			status: http.StatusBadRequest, problem: problem.TypeBadRequest,
		},
		{
			name: "400 for a list in If-Match", method: "PUT", target: apiPath, body: body, header: ifMatch(`"2", "3"`),
			status: http.StatusBadRequest, problem: problem.TypeBadRequest,
		},
		{
			name: "412 when the note changed since the client read it", method: "PUT", target: apiPath, body: body,
			header: ifMatch(`"2"`),
			expect: func(m *MockStoreMockRecorder) {
				m.Update(gomock.Any(), id, in, int64(2)).Return(notes.Note{}, notes.ErrVersionMismatch)
			},
			status: http.StatusPreconditionFailed, problem: problem.TypePreconditionFailed,
			check: apiDetailHas("GET it again"),
		},
		{
			name: "404 for an unknown id", method: "PUT", target: "/v1/notes/nope", body: body, header: ifMatch(`"1"`),
			expect: func(m *MockStoreMockRecorder) {
				m.Update(gomock.Any(), "nope", in, int64(1)).Return(notes.Note{}, notes.ErrNotFound)
			},
			status: http.StatusNotFound, problem: problem.TypeNotFound,
		},
		{
			name: "415 for a non-JSON body", method: "PUT", target: apiPath, body: body,
			header: map[string]string{"If-Match": `"3"`, "Content-Type": "text/plain"},
			status: http.StatusUnsupportedMediaType, problem: problem.TypeUnsupportedMediaType,
		},
		{
			name: "400 validation before touching the store", method: "PUT", target: apiPath,
			body: `{"title":""}`, header: ifMatch(`"3"`),
			status: http.StatusBadRequest, problem: problem.TypeValidation, check: apiFieldErrors("title"),
		},
		{
			name: "500 hides the store error and logs it", method: "PUT", target: apiPath, body: body, header: ifMatch(`"3"`),
			expect: func(m *MockStoreMockRecorder) {
				m.Update(gomock.Any(), id, in, int64(3)).Return(notes.Note{}, errAPIStore)
			},
			status: http.StatusInternalServerError, problem: problem.TypeInternal,
			check: apiStoreErrorLogged,
		},
	})
}

func TestAPIDelete(t *testing.T) {
	id := apiNote.ID
	apiRun(t, []apiCase{
		{
			name: "204 without If-Match deletes any version", method: "DELETE", target: apiPath,
			expect: func(m *MockStoreMockRecorder) { m.Delete(gomock.Any(), id, notes.AnyVersion).Return(nil) },
			status: http.StatusNoContent,
			check: func(t *testing.T, w *httptest.ResponseRecorder, _ *servicetest.LogBuffer) {
				if w.Body.Len() != 0 {
					t.Errorf("204 has a body: %s", w.Body)
				}
			},
		},
		{
			name: "204 with a matching If-Match", method: "DELETE", target: apiPath,
			header: map[string]string{"If-Match": `"3"`},
			expect: func(m *MockStoreMockRecorder) { m.Delete(gomock.Any(), id, int64(3)).Return(nil) },
			status: http.StatusNoContent,
		},
		{
			name: "412 when If-Match is stale", method: "DELETE", target: apiPath,
			header: map[string]string{"If-Match": `"2"`},
			expect: func(m *MockStoreMockRecorder) { m.Delete(gomock.Any(), id, int64(2)).Return(notes.ErrVersionMismatch) },
			status: http.StatusPreconditionFailed, problem: problem.TypePreconditionFailed,
		},
		{
			name: "400 for a malformed If-Match", method: "DELETE", target: apiPath,
			header: map[string]string{"If-Match": `three`},
			status: http.StatusBadRequest, problem: problem.TypeBadRequest,
		},
		{
			name: "404 for an unknown id", method: "DELETE", target: "/v1/notes/nope",
			expect: func(m *MockStoreMockRecorder) {
				m.Delete(gomock.Any(), "nope", notes.AnyVersion).Return(notes.ErrNotFound)
			},
			status: http.StatusNotFound, problem: problem.TypeNotFound,
		},
		{
			name: "500 hides the store error and logs it", method: "DELETE", target: apiPath,
			expect: func(m *MockStoreMockRecorder) { m.Delete(gomock.Any(), id, notes.AnyVersion).Return(errAPIStore) },
			status: http.StatusInternalServerError, problem: problem.TypeInternal,
			check: apiStoreErrorLogged,
		},
	})
}

// TestAPIRoundTrip follows one client through create, conditional get,
// update with the ETag it was given, and delete, the way the README tells
// users to.
func TestAPIRoundTrip(t *testing.T) {
	ctrl := gomock.NewController(t)
	store := NewMockStore(ctrl)
	h := server.New(server.Options{
		Logger: apiDiscardLogger(),
		Routes: []func(gin.IRouter){notes.Routes(store, notes.APIOptions{Logger: apiDiscardLogger()})},
	})
	v1 := apiNote
	v1.Version = 1
	v2 := apiNote
	v2.Version = 2
	in := notes.Input{Title: "Groceries", Body: "milk"}
	gomock.InOrder(
		store.EXPECT().Create(gomock.Any(), in).Return(v1, nil),
		store.EXPECT().Get(gomock.Any(), v1.ID).Return(v1, nil),
		store.EXPECT().Update(gomock.Any(), v1.ID, in, int64(1)).Return(v2, nil),
		store.EXPECT().Delete(gomock.Any(), v1.ID, int64(2)).Return(nil),
	)

	do := func(method, target, body string, hdr ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, target, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}

	w := do("POST", "/v1/notes", `{"title":"Groceries","body":"milk"}`)
	loc, tag := w.Header().Get("Location"), w.Header().Get("ETag")
	if w.Code != 201 {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	if w = do("GET", loc, "", "If-None-Match", tag); w.Code != 304 {
		t.Fatalf("conditional get: %d", w.Code)
	}
	w = do("PUT", loc, `{"title":"Groceries","body":"milk"}`, "If-Match", tag)
	if w.Code != 200 {
		t.Fatalf("update: %d %s", w.Code, w.Body)
	}
	if w = do("DELETE", loc, "", "If-Match", w.Header().Get("ETag")); w.Code != 204 {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}
}

func apiDiscardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestAPIUnavailableSaysWhichWay: a 503 for a database that did not answer
// in time says so; one for a database that refused or failed the request
// (a full disk, a read-only file, I/O errors) does not claim a timeout.
func TestAPIUnavailableSaysWhichWay(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"timed out", fmt.Errorf("%w: no answer within 6s: %w", notes.ErrUnavailable, context.DeadlineExceeded), "the database did not answer in time"},
		{"PostgreSQL's statement_timeout", fmt.Errorf("%w: %w", notes.ErrUnavailable, &pgconn.PgError{Code: "57014"}), "the database did not answer in time"},
		{"PostgreSQL's lock_timeout", fmt.Errorf("%w: %w", notes.ErrUnavailable, &pgconn.PgError{Code: "55P03"}), "the database did not answer in time"},
		{"refused", fmt.Errorf("%w: %w", notes.ErrUnavailable, errors.New("database or disk is full")), "the database could not serve this request"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctrl := gomock.NewController(t)
			store := NewMockStore(ctrl)
			store.EXPECT().Create(gomock.Any(), gomock.Any()).Return(notes.Note{}, tt.err)
			h := server.New(server.Options{Logger: apiDiscardLogger(),
				Routes: []func(gin.IRouter){notes.Routes(store, notes.APIOptions{Logger: apiDiscardLogger()})}})
			req := httptest.NewRequest("POST", "/v1/notes", strings.NewReader(`{"title":"t","body":"b"}`))
			req.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			var p problem.Problem
			_ = json.Unmarshal(w.Body.Bytes(), &p)
			if w.Code != http.StatusServiceUnavailable || !strings.HasPrefix(p.Detail, tt.want) || w.Header().Get("Retry-After") == "" {
				t.Errorf("%d %q (Retry-After %q), want 503 starting %q with Retry-After", w.Code, p.Detail, w.Header().Get("Retry-After"), tt.want)
			}
		})
	}
}

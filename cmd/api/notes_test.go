package main

// The tests of cmd/api that use the notes package itself: a notes store
// that fails, to watch a 5xx reach the stack-trace mail and New Relic.
// Every other test reaches notes through the wiring (internal/resources)
// or over HTTP, so docs/NEW_SERVICE.md deletes this file with internal/notes
// and the package still compiles.

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/monitoring"
	"github.com/prodready/service/internal/notes"
	"github.com/prodready/service/internal/servicetest"
)

// failingStore fails every Get, as a store whose database is down.
type failingStore struct {
	notes.Store
	err error
}

func (f failingStore) Get(context.Context, string) (notes.Note, error) { return notes.Note{}, f.err }

// failingNotes is the notes routes over a store whose every Get fails with
// err, logging to the logger they are given.
func failingNotes(err error) func(*slog.Logger) func(gin.IRouter) {
	return func(logger *slog.Logger) func(gin.IRouter) {
		return notes.Routes(failingStore{err: err}, notes.APIOptions{Logger: logger})
	}
}

func TestAlerts_StoreFailureGivesOne5xxMail(t *testing.T) {
	t.Parallel() // each test has its own reporter, passed in server.Options.Alerts
	m := servicetest.Mailpit(t)
	s := newAlertServer(t, m.SMTPHost(), m.SMTPPort(), failingNotes(errors.New("dial tcp 10.0.0.5:5432: connect: connection refused")), nil)
	w := httptest.NewRecorder()
	s.handler.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/notes/n1", nil))
	if w.Code != http.StatusInternalServerError || strings.Contains(w.Body.String(), "10.0.0.5") {
		t.Fatalf("response %d: %s", w.Code, w.Body)
	}
	flush(t, s.rep)
	msgs := m.Messages(t)
	if len(msgs) != 1 {
		t.Fatalf("%d mails, want one for the failed request", len(msgs))
	}
	got := msgs[0]
	if got.Subject != "[notes-api] [staging] 5xx: dial tcp 10.0.0.5:5432: connect: connection refused" ||
		!strings.Contains(got.Text, "Route:       /v1/notes/:id") ||
		!strings.Contains(got.Text, "ERROR notes store failed op=get") {
		t.Errorf("mail %q:\n%s", got.Subject, got.Text)
	}
}

// TestAlerts_PanicAndServerErrorReachNewRelic: the server's recovery and
// error reporting reach the agent through alertHooks, the panic with its
// stack; a 4xx is not an error.
func TestAlerts_PanicAndServerErrorReachNewRelic(t *testing.T) {
	col := servicetest.StartCollector(t)
	agent, err := monitoring.New(monitoring.Options{Config: config.NewRelic{Enabled: true, LicenseKey: servicetest.LicenseKey, AppName: "alerts",
		CollectorHost: col.Host(), CollectorCAFile: col.CAFile()}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.Application().WaitForConnection(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	rep, err := newAlertReporter(config.Default(), logger) // e-mail off: the agent alone hears
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(logger, &alertHooks{rep: rep, agent: agent},
		failingNotes(errors.New("store: the disk is on fire"))(logger),
		func(r gin.IRouter) {
			r.GET("/test/panic/:id", func(c *gin.Context) { panic("kaboom " + c.Param("id")) })
		})
	srv := httptest.NewServer(e)
	defer srv.Close()
	for path, want := range map[string]int{"/test/panic/7": 500, "/v1/notes/0190f000-0000-7000-8000-000000000000": 500, "/v1/notes?limit=nope": 400} {
		resp, err := http.Get(srv.URL + path)
		if err != nil || resp.StatusCode != want {
			t.Fatalf("GET %s: %v %v, want %d", path, resp, err, want)
		}
		resp.Body.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	agent.Shutdown(ctx)

	var classes []string
	var stack string
	for _, et := range col.ErrorTraces() {
		classes = append(classes, et.Class+": "+et.Message)
		if et.Class == "panic" {
			stack = strings.Join(et.Stack, "\n")
		}
	}
	if len(classes) != 2 || !strings.Contains(strings.Join(classes, "|"), "panic: kaboom 7") || !strings.Contains(strings.Join(classes, "|"), "the disk is on fire") {
		t.Errorf("errors noticed %q, want the panic and the store failure, not the 400", classes)
	}
	if !strings.Contains(stack, "notes_test.go") { // this file, where the handler panicked
		t.Errorf("the panic's stack does not reach the handler that panicked:\n%s", stack)
	}
}

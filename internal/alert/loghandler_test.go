package alert_test

// LogHandler tests live outside package alert: the handler leaves this
// package's frames out of the stack it records, and so it would leave out
// the tests' own frames if they were in it.

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prodready/service/internal/alert"
	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/servicetest"
)

// setup returns a reporter sending to a fresh Mailpit and a logger whose
// handler is wrapped by the reporter's LogHandler, as serve wires it.
func setup(t *testing.T, onErrorLog bool) (*alert.Reporter, *slog.Logger, *servicetest.MailpitServer, *servicetest.LogBuffer) {
	t.Helper()
	m := servicetest.Mailpit(t)
	cfg := config.Email{
		Enabled: true, Recipients: []string{"ops@example.com"}, From: "notes-api@example.com",
		SubjectPrefix: "[notes-api]", SMTPHost: m.SMTPHost(), SMTPPort: m.SMTPPort(), TLSPolicy: "none",
		Timeout: 5 * time.Second, QueueSize: 100, HourlyCap: 30, OnErrorLog: onErrorLog,
	}
	out := &servicetest.LogBuffer{}
	base := slog.New(slog.NewJSONHandler(out, nil))
	rep, err := alert.New(cfg, alert.Info{Service: "notes-api", Environment: "staging", Version: "v1", Host: "web-1"}, base)
	if err != nil {
		t.Fatal(err)
	}
	return rep, slog.New(rep.LogHandler(base.Handler())), m, out
}

func closeReporter(t *testing.T, rep *alert.Reporter) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rep.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestErrorLogOutsideARequestIsMailed(t *testing.T) {
	rep, logger, m, out := setup(t, true)
	logger.With("component", "cache").Error("cache refresh failed", "error", errors.New("redis down"), "attempt", 3)
	logger.Warn("only a warning")
	closeReporter(t, rep)

	msgs := m.Messages(t)
	if len(msgs) != 1 {
		t.Fatalf("%d mails, want 1 for the error record", len(msgs))
	}
	got := msgs[0]
	if got.Subject != "[notes-api] [staging] error-log: cache refresh failed: redis down" {
		t.Errorf("subject = %q", got.Subject)
	}
	for _, want := range []string{
		"Log record", "ERROR cache refresh failed component=cache error=redis down attempt=3",
		"Type:        *errors.errorString",
		"Stack trace\n", "alert_test.TestErrorLogOutsideARequestIsMailed", "loghandler_test.go:",
	} {
		if !strings.Contains(got.Text, want) {
			t.Errorf("body lacks %q:\n%s", want, got.Text)
		}
	}
	// The stack starts at the code that logged, not inside log/slog.
	if _, stack, _ := strings.Cut(got.Text, "Stack trace\n"); strings.HasPrefix(stack, "log/slog") {
		t.Errorf("stack starts in log/slog:\n%s", stack)
	}
	// Both records still reach the wrapped handler.
	if !strings.Contains(out.String(), "cache refresh failed") || !strings.Contains(out.String(), "only a warning") {
		t.Errorf("records missing from the log:\n%s", out)
	}
}

func TestErrorLogNotMailedWhenOff(t *testing.T) {
	rep, logger, m, _ := setup(t, false)
	logger.Error("cache refresh failed", "error", "redis down")
	ctx, end := rep.BeginRequest(context.Background())
	logger.ErrorContext(ctx, "inside a request that succeeded")
	end()
	closeReporter(t, rep)
	if n := m.Count(t); n != 0 {
		t.Errorf("%d mails with email.on_error_log off, want 0", n)
	}
}

// A request that logs an error and then fails with a 500 gives one mail,
// the 5xx one, carrying the record.
func TestFailingRequestGivesOneMailWithItsLogRecords(t *testing.T) {
	rep, logger, m, _ := setup(t, true)
	ctx, end := rep.BeginRequest(context.Background())
	err := errors.New("connection refused")
	logger.ErrorContext(ctx, "notes store failed", "op", "list", "error", err)
	rep.Report(ctx, alert.Report{Kind: alert.Kind5xx, Err: err, Method: "GET", Route: "/v1/notes", Status: 500})
	end()
	logger.ErrorContext(ctx, "logged after the request ended") // a straggler goroutine: mailed on its own
	closeReporter(t, rep)

	msgs := m.Messages(t)
	if len(msgs) != 2 {
		t.Fatalf("%d mails, want the 5xx and the straggler", len(msgs))
	}
	if msgs[0].Subject != "[notes-api] [staging] 5xx: connection refused" ||
		!strings.Contains(msgs[0].Text, "Error records logged during this request\n") ||
		!strings.Contains(msgs[0].Text, "ERROR notes store failed op=list error=connection refused") ||
		!strings.Contains(msgs[0].Text, "(none: a returned error carries no stack trace") {
		t.Errorf("5xx mail: %q\n%s", msgs[0].Subject, msgs[0].Text)
	}
	if !strings.Contains(msgs[1].Subject, "error-log: logged after the request ended") {
		t.Errorf("second mail: %q", msgs[1].Subject)
	}
}

// A request that logs an error but still succeeds: the record is mailed
// when the request ends.
func TestErrorRecordOfASucceedingRequestIsMailedAtItsEnd(t *testing.T) {
	rep, logger, m, _ := setup(t, true)
	ctx, end := rep.BeginRequest(context.Background())
	logger.WithGroup("g").ErrorContext(ctx, "thumbnail failed; served without it", "error", "decoder crashed")
	if n := m.Count(t); n != 0 {
		t.Errorf("mailed before the request ended")
	}
	end()
	closeReporter(t, rep)
	msgs := m.Messages(t)
	if len(msgs) != 1 || msgs[0].Subject != "[notes-api] [staging] error-log: thumbnail failed; served without it: decoder crashed" {
		t.Errorf("mails = %+v", msgs)
	}
}

// A field named like a credential is redacted in the mailed record, as a
// header of that name is, in a group too; the other fields stay readable.
func TestErrorLogRecordRedactsSecretFields(t *testing.T) {
	rep, logger, m, _ := setup(t, true)
	logger.With("api_key", "k-0123456789abcdef").Error("login failed",
		"user", "alice", "password", "hunter2-Sup3r-S3cret",
		slog.Group("upstream", "host", "auth.internal", "access_token", "tok-0123456789abcdef"))
	closeReporter(t, rep)

	msgs := m.Messages(t)
	if len(msgs) != 1 {
		t.Fatalf("%d mails, want 1", len(msgs))
	}
	for _, secret := range []string{"hunter2-Sup3r-S3cret", "tok-0123456789abcdef", "k-0123456789abcdef"} {
		if strings.Contains(msgs[0].Text, secret) || strings.Contains(msgs[0].Subject, secret) {
			t.Errorf("mail carries the secret %q:\n%s", secret, msgs[0].Text)
		}
	}
	want := "ERROR login failed api_key=[redacted] user=alice password=[redacted] upstream.host=auth.internal upstream.access_token=[redacted]"
	if !strings.Contains(msgs[0].Text, want) {
		t.Errorf("body lacks %q:\n%s", want, msgs[0].Text)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/prodready/service/internal/alert"
	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/logging"
	"github.com/prodready/service/internal/server"
	"github.com/prodready/service/internal/servicetest"
)

// Secrets the tests send or configure; none may reach a mail.
const (
	alertPassword    = "smtp-pw-0987654321"
	alertStatusToken = "status-tok-0123456789abcdef"
	alertBearer      = "bearer-abcdef-123456"
	alertCookie      = "cookie-val-7777777"
	alertAPIKey      = "apikey-999888777"
	alertQueryToken  = "qtok-5555566666"
)

// alertServer is the real HTTP handler with the alert reporter wired as
// serve wires it, reporting to an SMTP server at host:port.
type alertServer struct {
	handler http.Handler
	rep     *alert.Reporter
	logs    *servicetest.LogBuffer
}

// routes, given the server's logger, are mounted beside the panicking
// test route (nil: none).
func newAlertServer(tb testing.TB, host string, port int, routes func(*slog.Logger) func(gin.IRouter), logOut io.Writer) *alertServer {
	tb.Helper()
	cfg := config.Default()
	cfg.Environment = config.Staging
	cfg.Status.Tokens = []string{alertStatusToken}
	cfg.Email = config.Email{
		Enabled: true, Recipients: []string{"ops@example.com"}, From: "notes-api@example.com", SubjectPrefix: "[notes-api]",
		SMTPHost: host, SMTPPort: port, Password: alertPassword, TLSPolicy: "none",
		Timeout: 2 * time.Second, QueueSize: 100, HourlyCap: 30, FlushTimeout: 5 * time.Second,
	}
	logs := &servicetest.LogBuffer{}
	if logOut == nil {
		logOut = logs
	}
	logger, _, err := logging.New(logOut, logging.Options{Level: "info", Format: "json"})
	if err != nil {
		tb.Fatal(err)
	}
	rep, err := newAlertReporter(cfg, logger)
	if err != nil {
		tb.Fatal(err)
	}
	logger = slog.New(rep.LogHandler(logger.Handler()))
	tb.Cleanup(func() { // tests that expect a clean flush call flush themselves
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = rep.Close(ctx)
	})
	var mounted []func(gin.IRouter)
	if routes != nil {
		mounted = append(mounted, routes(logger))
	}
	e := newEngine(logger, &alertHooks{rep: rep}, mounted...)
	e.GET("/test/panic/:id", func(c *gin.Context) {
		var ids []string
		_ = ids[len(c.Param("id"))] // index out of range
	})
	return &alertServer{handler: e, rep: rep, logs: logs}
}

// newEngine is the server as serve builds it, with routes, reporting to
// alerts and observed by their agent (nil: no alerts, no agent).
func newEngine(logger *slog.Logger, alerts *alertHooks, routes ...func(gin.IRouter)) *gin.Engine {
	o := server.Options{Logger: logger, Version: "test", Routes: routes}
	if alerts != nil {
		o.Alerts, o.Observe = *alerts, alerts.agent.Middleware()
	}
	return server.New(o)
}

func flush(tb testing.TB, rep *alert.Reporter) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rep.Close(ctx); err != nil {
		tb.Errorf("flush: %v", err)
	}
}

// panicRequest carries credentials in the header, a cookie, an API key and
// the query string.
func panicRequest() *http.Request {
	req := httptest.NewRequest(http.MethodGet, "/test/panic/42?token="+alertQueryToken+"&limit=5", nil)
	req.Header.Set("Authorization", "Bearer "+alertBearer)
	req.Header.Set("Cookie", "session="+alertCookie)
	req.Header.Set("X-Api-Key", alertAPIKey)
	req.Header.Set("User-Agent", "alert-test/1")
	return req
}

func assertNoAlertSecret(t *testing.T, where string, texts ...string) {
	t.Helper()
	for _, s := range []string{alertPassword, alertStatusToken, alertBearer, alertCookie, alertAPIKey, alertQueryToken} {
		for _, text := range texts {
			if strings.Contains(text, s) {
				t.Errorf("%s contains the secret %q", where, s)
			}
		}
	}
}

func TestAlerts_OnePanicGivesOneMail(t *testing.T) {
	t.Parallel() // each test has its own reporter, passed in server.Options.Alerts
	m := servicetest.Mailpit(t)
	s := newAlertServer(t, m.SMTPHost(), m.SMTPPort(), nil, nil)

	w := httptest.NewRecorder()
	s.handler.ServeHTTP(w, panicRequest())

	// The client: a 500 problem with the request ID and nothing internal.
	var p map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || w.Code != http.StatusInternalServerError ||
		w.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("response %d %s: %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	rid := w.Header().Get("X-Request-ID")
	if p["request_id"] != rid || rid == "" {
		t.Errorf("problem request_id = %v, header %q", p["request_id"], rid)
	}
	if strings.Contains(w.Body.String(), "out of range") || strings.Contains(w.Body.String(), "goroutine") {
		t.Errorf("internals leaked to the client: %s", w.Body)
	}
	// The log: the panic at error level with its stack.
	if !strings.Contains(s.logs.String(), `"level":"ERROR","msg":"panic serving request"`) ||
		!strings.Contains(s.logs.String(), `goroutine `) {
		t.Errorf("panic not logged at error with its stack:\n%s", s.logs)
	}

	flush(t, s.rep)
	msgs := m.Messages(t)
	if len(msgs) != 1 {
		t.Fatalf("%d mails for one panic, want 1", len(msgs))
	}
	got := msgs[0]
	if got.Subject != "[notes-api] [staging] panic: runtime error: index out of range [2] with length 0" {
		t.Errorf("subject = %q", got.Subject)
	}
	for _, want := range []string{
		"Route:       /test/panic/:id", "Request ID:  " + rid, "Path:        /test/panic/42?token=[redacted]&limit=5",
		"User agent:  alert-test/1", "Authorization: [redacted]", "Cookie: [redacted]", "X-Api-Key: [redacted]",
		"Stack trace\ngoroutine ", "alerts_test.go:", "Type:        runtime.boundsError",
		// The panic's log record rides along in the same mail.
		"Error records logged during this request", "ERROR panic serving request",
	} {
		if !strings.Contains(got.Text, want) {
			t.Errorf("mail lacks %q:\n%s", want, got.Text)
		}
	}
	assertNoAlertSecret(t, "the mail", got.Subject, got.Text, got.Raw)
}

func TestAlerts_ThousandIdenticalPanicsGiveAHandfulOfMails(t *testing.T) {
	t.Parallel() // each test has its own reporter, passed in server.Options.Alerts
	m := servicetest.Mailpit(t)
	s := newAlertServer(t, m.SMTPHost(), m.SMTPPort(), nil, io.Discard)
	for range 1000 {
		w := httptest.NewRecorder()
		s.handler.ServeHTTP(w, panicRequest())
		if w.Code != http.StatusInternalServerError {
			t.Fatalf("status %d", w.Code)
		}
	}
	flush(t, s.rep)
	msgs := m.Messages(t)
	if len(msgs) == 0 || len(msgs) > 11 {
		t.Fatalf("%d mails for 1000 identical panics, want at most 11", len(msgs))
	}
	last := msgs[len(msgs)-1].Subject
	if !strings.HasSuffix(last, "(x512)") {
		t.Errorf("last subject %q, want the count (x512)", last)
	}
	st := s.rep.Stats()
	t.Logf("1000 identical panics: %d mails; last subject %q; stats %+v", len(msgs), last, st)
}

func closedTCPPort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	return port
}

func TestAlerts_SMTPDownRequestsStillAnswered(t *testing.T) {
	t.Parallel() // each test has its own reporter, passed in server.Options.Alerts
	s := newAlertServer(t, "127.0.0.1", closedTCPPort(t), nil, nil)
	for i := range 50 {
		w := httptest.NewRecorder()
		s.handler.ServeHTTP(w, panicRequest())
		if w.Code != http.StatusInternalServerError || !strings.Contains(w.Header().Get("Content-Type"), "problem+json") {
			t.Fatalf("request %d: %d %s", i, w.Code, w.Body)
		}
	}
	flush(t, s.rep)
	st := s.rep.Stats()
	if st.Failed == 0 || st.Sent != 0 || !strings.Contains(st.LastError, "connection refused") {
		t.Errorf("stats = %+v, want failures counted with the SMTP error", st)
	}
	assertNoAlertSecret(t, "LastError and logs", st.LastError, s.logs.String())
	if !strings.Contains(s.logs.String(), `"level":"WARN","msg":"alert e-mail not sent"`) {
		t.Error("SMTP failure not logged at warn")
	}
}

// benchmarkPanicRequest measures a panicking request end to end (recovery,
// error log with stack, fingerprint, queueing) with the alert e-mail going
// to host:port.
func benchmarkPanicRequest(b *testing.B, host string, port int) {
	s := newAlertServer(b, host, port, nil, io.Discard)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		s.handler.ServeHTTP(w, panicRequest())
		if w.Code != http.StatusInternalServerError {
			b.Fatalf("status %d", w.Code)
		}
	}
	b.StopTimer()
	st := s.rep.Stats()
	b.ReportMetric(float64(st.Sent), "sent")
	b.ReportMetric(float64(st.Failed), "failed")
}

// BenchmarkPanicRequest_NoAlerts is the baseline: the same request with
// no alerts (server.Options.Alerts nil).
func BenchmarkPanicRequest_NoAlerts(b *testing.B) {
	logger, _, err := logging.New(io.Discard, logging.Options{Level: "info", Format: "json"})
	if err != nil {
		b.Fatal(err)
	}
	e := newEngine(logger, nil)
	e.GET("/test/panic/:id", func(c *gin.Context) {
		var ids []string
		_ = ids[len(c.Param("id"))]
	})
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		e.ServeHTTP(w, panicRequest())
		if w.Code != http.StatusInternalServerError {
			b.Fatalf("status %d", w.Code)
		}
	}
}

func BenchmarkPanicRequest_SMTPUp(b *testing.B) {
	m := servicetest.Mailpit(b)
	benchmarkPanicRequest(b, m.SMTPHost(), m.SMTPPort())
}

func BenchmarkPanicRequest_SMTPDown(b *testing.B) {
	benchmarkPanicRequest(b, "127.0.0.1", closedTCPPort(b))
}

// BenchmarkPanicRequest_SMTPHung points at a server that accepts and never
// answers: the worker waits for its timeout, and requests do not.
func BenchmarkPanicRequest_SMTPHung(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	held := make(chan net.Conn, 100)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held <- c // never answered
		}
	}()
	b.Cleanup(func() {
		_ = ln.Close()
		for {
			select {
			case c := <-held:
				_ = c.Close()
			default:
				return
			}
		}
	})
	benchmarkPanicRequest(b, "127.0.0.1", ln.Addr().(*net.TCPAddr).Port)
}

func TestEmailTestCommand(t *testing.T) {
	m := servicetest.Mailpit(t)
	env := func(port int) map[string]string {
		return map[string]string{
			"APP_ENVIRONMENT": "development", "APP_EMAIL_RECIPIENTS": "ops@example.com,dev@example.com",
			"APP_EMAIL_FROM": "notes-api@example.com", "APP_EMAIL_SMTP_HOST": "127.0.0.1",
			"APP_EMAIL_SMTP_PORT": strconv.Itoa(port), "APP_EMAIL_TLS_POLICY": "none",
			"APP_EMAIL_USERNAME": "alerts", "APP_EMAIL_PASSWORD": alertPassword,
		}
	}

	t.Run("sent", func(t *testing.T) {
		e := env(m.SMTPPort())
		delete(e, "APP_EMAIL_USERNAME") // Mailpit here takes no authentication
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"email-test"}, func(k string) string { return e[k] }, &stdout, &stderr)
		if err != nil {
			t.Fatalf("email-test: %v", err)
		}
		want := "email-test: sent to ops@example.com, dev@example.com via 127.0.0.1:" + strconv.Itoa(m.SMTPPort()) +
			" (email.enabled is false: sent anyway to test the settings; alerts stay off)\n"
		if stdout.String() != want || stderr.Len() != 0 {
			t.Errorf("stdout = %q, stderr %q; want one line:\n%q", stdout.String(), stderr.String(), want)
		}
		if msgs := m.Messages(t); len(msgs) != 1 || len(msgs[0].To) != 2 {
			t.Errorf("mails = %+v, want one test mail to two recipients", msgs)
		}
		m.DeleteAll(t)

		// Enabled: the line is exactly where it went.
		e["APP_EMAIL_ENABLED"] = "true"
		stdout.Reset()
		if err := run(context.Background(), []string{"email-test"}, func(k string) string { return e[k] }, &stdout, &stderr); err != nil {
			t.Fatalf("email-test: %v", err)
		}
		if want := "email-test: sent to ops@example.com, dev@example.com via 127.0.0.1:" + strconv.Itoa(m.SMTPPort()) + "\n"; stdout.String() != want {
			t.Errorf("stdout = %q, want %q", stdout.String(), want)
		}
		if msgs := m.Messages(t); len(msgs) != 1 || len(msgs[0].To) != 2 {
			t.Errorf("mails = %+v, want one test mail to two recipients", msgs)
		}
	})

	t.Run("SMTP down: one line, exit code 1, no password", func(t *testing.T) {
		e := env(closedTCPPort(t))
		var stdout bytes.Buffer
		err := run(context.Background(), []string{"email-test"}, func(k string) string { return e[k] }, &stdout, io.Discard)
		if err == nil || exitCode(err) != exitFailure || stdout.Len() != 0 {
			t.Fatalf("err %v (exit %d), stdout %q; want a failure with exit code 1 and no output", err, exitCode(err), stdout.String())
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "email-test: ") || strings.ContainsAny(msg, "\r\n") ||
			!strings.Contains(msg, "connection refused") || strings.Contains(msg, alertPassword) {
			t.Errorf("error = %q, want one line with the SMTP error and no password", msg)
		}

		// The real binary: one line on stderr, exit code 1.
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "API_TEST_RUN_MAIN=1", "API_TEST_ARGS=email-test")
		for k, v := range e {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		runErr := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(runErr, &ee) || ee.ExitCode() != 1 || out.Len() != 0 || strings.Count(errOut.String(), "\n") != 1 ||
			!strings.HasPrefix(errOut.String(), "api: email-test: ") || strings.Contains(errOut.String(), alertPassword) {
			t.Errorf("exit %v, stdout %q, stderr %q; want exit 1 and one error line", runErr, out.String(), errOut.String())
		}
		t.Logf("stderr: %s", errOut.String())
	})

	t.Run("no recipients is a usage error", func(t *testing.T) {
		e := env(m.SMTPPort())
		delete(e, "APP_EMAIL_RECIPIENTS")
		err := run(context.Background(), []string{"email-test"}, func(k string) string { return e[k] }, io.Discard, io.Discard)
		if exitCode(err) != exitUsage || !strings.Contains(fmtErr(err), "email.recipients is empty") {
			t.Errorf("err = %v, want a usage error about recipients", err)
		}
	})
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestURLPasswords(t *testing.T) {
	got := urlPasswords("postgres://app:s3cret-db-pass@db:5432/notes", "", "redis://:r3dis-pass@cache:6379/0", "postgres://nopass@db/x", "%zz")
	if len(got) != 2 || got[0] != "s3cret-db-pass" || got[1] != "r3dis-pass" {
		t.Errorf("urlPasswords = %v", got)
	}
}

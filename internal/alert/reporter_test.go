package alert

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mail "github.com/wneessen/go-mail"

	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/health"
	"github.com/prodready/service/internal/servicetest"
)

// Secrets that must never reach a mail or a log line.
const (
	testPassword = "smtp-pass-0123456789"
	testToken    = "status-token-abcdef0123456789"
	bearerToken  = "bearer-tok-555666777"
	cookieValue  = "cookie-sess-8889990"
	apiKey       = "api-key-1212121212"
	queryToken   = "query-tok-3434343434"
)

var allSecrets = []string{testPassword, testToken, bearerToken, cookieValue, apiKey, queryToken}

// mailConfig points the reporter at host:port without TLS or authentication,
// as for a local Mailpit. The password is set (without a username, so it is
// not used) to check that it is scrubbed everywhere.
func mailConfig(host string, port int) config.Email {
	return config.Email{
		Enabled: true, Recipients: []string{"ops@example.com", "dev@example.com"}, From: "notes-api@example.com",
		SubjectPrefix: "[notes-api]", SMTPHost: host, SMTPPort: port, Password: testPassword, TLSPolicy: "none",
		Timeout: 5 * time.Second, QueueSize: 100, HourlyCap: 30, FlushTimeout: 5 * time.Second,
	}
}

func mailpitConfig(m *servicetest.MailpitServer) config.Email {
	return mailConfig(m.SMTPHost(), m.SMTPPort())
}

var testInfo = Info{Service: "notes-api", Environment: "staging", Version: "v1.2.3", Host: "web-1", StatusTokens: []string{testToken}}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newTestReporter builds a reporter logging into a buffer, closed at the end
// of the test.
func newTestReporter(t *testing.T, cfg config.Email, now func() time.Time, extra ...mail.Option) (*Reporter, *servicetest.LogBuffer) {
	t.Helper()
	logs := &servicetest.LogBuffer{}
	if now == nil {
		now = time.Now
	}
	r, err := newReporter(cfg, testInfo, slog.New(slog.NewJSONHandler(logs, nil)), now, extra...)
	if err != nil {
		t.Fatalf("newReporter: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = r.Close(ctx)
	})
	return r, logs
}

func closeNow(t *testing.T, r *Reporter) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// panicReport is a report as the server's recovery makes it, with
// credentials in every place a request can carry them.
func panicReport() Report {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+bearerToken)
	h.Set("Cookie", "session="+cookieValue+"; theme=dark")
	h.Set("X-Api-Key", apiKey)
	h.Set("Accept", "application/json")
	h.Set("User-Agent", "curl/8.5")
	v := "nil map write while checking token " + testToken + " and password " + testPassword + " for " + bearerToken
	return Report{
		Kind: KindPanic, Value: v, Stack: panicSiteA(v),
		Method: "GET", Route: "/v1/notes/:id", Path: "/v1/notes/42", Query: "token=" + queryToken + "&limit=5",
		RequestID: "req-0193-abc", UserAgent: "curl/8.5", ClientIP: "192.0.2.7", Status: 500, Headers: h,
		Time: time.Date(2026, 11, 25, 10, 30, 0, 0, time.UTC),
	}
}

// assertNoSecret fails when any secret appears in any of texts.
func assertNoSecret(t *testing.T, where string, texts ...string) {
	t.Helper()
	for _, s := range allSecrets {
		for _, text := range texts {
			if strings.Contains(text, s) {
				t.Errorf("%s contains the secret %q:\n%s", where, s, text)
			}
		}
	}
}

func TestPanicMailContent(t *testing.T) {
	m := servicetest.Mailpit(t)
	r, logs := newTestReporter(t, mailpitConfig(m), nil)

	r.Report(context.Background(), panicReport())
	closeNow(t, r)

	msgs := m.Messages(t)
	if len(msgs) != 1 {
		t.Fatalf("got %d mails, want 1", len(msgs))
	}
	got := msgs[0]
	if want := "[notes-api] [staging] panic: nil map write while checking token [redacted] and password [redacted] for [redacted]"; got.Subject != want {
		t.Errorf("subject = %q, want %q", got.Subject, want)
	}
	if got.From != "notes-api@example.com" || strings.Join(got.To, ",") != "ops@example.com,dev@example.com" {
		t.Errorf("from %q to %q", got.From, got.To)
	}
	for _, want := range []string{
		"Kind:        panic", "Type:        string", "Environment: staging", "Host:        web-1",
		"Service:     notes-api", "Version:     v1.2.3", "Time:        2026-11-25T10:30:00Z",
		"Method:      GET", "Route:       /v1/notes/:id", "Path:        /v1/notes/42?token=[redacted]&limit=5",
		"Request ID:  req-0193-abc", "Client IP:   192.0.2.7", "User agent:  curl/8.5", "Status:      500",
		"Authorization: [redacted]", "Cookie: [redacted]", "X-Api-Key: [redacted]", "Accept: application/json",
		"Stack trace\ngoroutine ", "alert.panicSiteA", "reporter_test.go:", "Occurrences: 1 (first",
	} {
		if !strings.Contains(got.Text, want) {
			t.Errorf("body lacks %q:\n%s", want, got.Text)
		}
	}
	if got.Headers["Auto-Submitted"][0] != "auto-generated" || len(got.Headers["X-Alert-Fingerprint"]) != 1 {
		t.Errorf("headers = %v, want Auto-Submitted and X-Alert-Fingerprint", got.Headers)
	}
	assertNoSecret(t, "the mail", got.Subject, got.Text, got.Raw)
	assertNoSecret(t, "the logs", logs.String())
	if st := r.Stats(); st.Sent != 1 || st.Failed != 0 || st.Dropped != 0 || !st.Enabled {
		t.Errorf("stats = %+v, want 1 sent", st)
	}
}

func TestRepeatsAreThrottledAndCounted(t *testing.T) {
	m := servicetest.Mailpit(t)
	r, _ := newTestReporter(t, mailpitConfig(m), nil)
	for i := range 1000 {
		rep := panicReport()
		rep.Value = fmt.Sprintf("boom for note %d", i) // the text varies; the site does not
		r.Report(context.Background(), rep)
	}
	closeNow(t, r)

	msgs := m.Messages(t)
	if len(msgs) != 10 { // at 1, 2, 4, ..., 512
		t.Fatalf("got %d mails for 1000 identical panics, want 10", len(msgs))
	}
	if strings.Contains(msgs[0].Subject, "(x") {
		t.Errorf("first subject %q shows a count", msgs[0].Subject)
	}
	last := msgs[len(msgs)-1]
	if !strings.HasSuffix(last.Subject, "(x512)") || !strings.Contains(last.Text, "Occurrences: 512 since") {
		t.Errorf("last mail: subject %q, want the count (x512); body:\n%s", last.Subject, last.Text)
	}
	if st := r.Stats(); st.Sent != 10 || st.Throttled != 990 || st.Suppressed != 0 {
		t.Errorf("stats = %+v, want 10 sent and 990 throttled", st)
	}
	t.Logf("1000 identical panics: %d mails, last subject %q", len(msgs), last.Subject)
}

// TestBudget_FloodThenADifferentFailure is finding 1 of issue 10 against a
// real Mailpit: hundreds of identical panics must not use the mail a
// different failure needs, and what the budget held back is listed in the
// next mail that goes out, then in a digest when nothing else goes out.
func TestBudget_FloodThenADifferentFailure(t *testing.T) {
	m := servicetest.Mailpit(t)
	cfg := mailpitConfig(m)
	cfg.HourlyCap, cfg.NewFingerprintReserve, cfg.DigestInterval = 5, 2, 15*time.Minute
	clk := &clock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	r, logs := newTestReporter(t, cfg, clk.Now)

	for range 300 {
		r.Report(context.Background(), panicReport())
	}
	flood := m.WaitForMessages(t, 4, 10*time.Second) // counts 1, 2, 4, 8: the three repeats cap-reserve allows
	if st := r.Stats(); st.Sent != 4 || st.Suppressed != 5 || st.Held != 5 || st.Throttled != 291 {
		t.Errorf("after the flood: %+v; want 4 sent, 5 held back (counts 16 ... 256), 291 throttled", st)
	}
	if n := len(logs.Records(t, "alert e-mail budget reached; alerts are held back and listed in the next mail or digest")); n != 1 {
		t.Errorf("%d budget warnings, want 1", n)
	}

	clk.Add(time.Minute)
	r.Report(context.Background(), Report{Kind: Kind5xx, Err: errors.New("database is gone"), Method: "POST", Route: "/v1/notes", Status: 500})
	msgs := m.WaitForMessages(t, 5, 10*time.Second)
	second := msgs[4]
	fp := flood[0].Headers["X-Alert-Fingerprint"][0]
	if !strings.Contains(second.Subject, "5xx: database is gone") {
		t.Fatalf("the different failure's mail did not arrive; the 5th mail is %q", second.Subject)
	}
	for _, want := range []string{"Held back by the alert budget since 2026-11-25T10:00:00Z: 5 mails of 1 fingerprints (300 occurrences)",
		fp + "  panic      x300, 5 mails held", "at GET /v1/notes/:id", "email.hourly_cap 5, of which email.new_fingerprint_reserve 2"} {
		if !strings.Contains(second.Text, want) {
			t.Errorf("the next mail does not list what was held back (%q):\n%s", want, second.Text)
		}
	}
	assertNoSecret(t, "the held-back list", second.Text)
	if st := r.Stats(); st.Held != 0 {
		t.Errorf("held = %d after a mail listed them, want 0", st.Held)
	}

	// The flood goes on and nothing else is mailed: a digest lists it once
	// digest_interval has passed since the first held report.
	for range 300 {
		r.Report(context.Background(), panicReport()) // count 512 is held
	}
	clk.Add(14 * time.Minute)
	r.mu.Lock()
	r.digestLocked(clk.Now())
	r.mu.Unlock()
	clk.Add(time.Minute)
	r.mu.Lock()
	r.digestLocked(clk.Now())
	r.mu.Unlock()
	msgs = m.WaitForMessages(t, 6, 10*time.Second)
	digest := msgs[5]
	if !strings.Contains(digest.Subject, "[notes-api] [staging] suppressed: 1 alerts held back by the budget, 1 fingerprints") ||
		!strings.Contains(digest.Text, "x600, 1 mails held") {
		t.Errorf("digest: %q\n%s", digest.Subject, digest.Text)
	}
	closeNow(t, r)
	if st := r.Stats(); st.Sent != 6 || st.Digests != 1 || m.Count(t) != 6 {
		t.Errorf("stats %+v with %d mails; want 6 sent, one of them a digest", st, m.Count(t))
	}
}

func TestCloseMailsThePendingSummary(t *testing.T) {
	m := servicetest.Mailpit(t)
	cfg := mailpitConfig(m)
	cfg.HourlyCap = 1
	r, _ := newTestReporter(t, cfg, nil)
	for i := range 3 {
		r.Report(context.Background(), Report{Kind: Kind5xx, Err: fmt.Errorf("failure %d", i), Route: fmt.Sprint("/r", i)})
	}
	closeNow(t, r)
	msgs := m.Messages(t)
	if len(msgs) != 2 || !strings.Contains(msgs[1].Subject, "2 alerts held back by the budget, 2 fingerprints") {
		t.Fatalf("got %d mails (%v), want the first failure and a digest of 2 held back", len(msgs), msgs)
	}
	// Closed: further reports are dropped, and Close again is harmless.
	r.Report(context.Background(), Report{Kind: Kind5xx, Err: fmt.Errorf("late"), Route: "/late"})
	if st := r.Stats(); st.Dropped != 1 {
		t.Errorf("dropped = %d after a report to a closed reporter, want 1", st.Dropped)
	}
	closeNow(t, r)
}

// TestDigestIsMailedWithoutAnotherReport: after a storm the budget held
// back, the digest goes out once email.digest_interval has passed, even if
// no further report ever comes to carry it.
func TestDigestIsMailedWithoutAnotherReport(t *testing.T) {
	m := servicetest.Mailpit(t)
	cfg := mailpitConfig(m)
	cfg.HourlyCap = 1
	cfg.DigestInterval = 400 * time.Millisecond // the worker then looks every 100 ms
	c := &clock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	r, _ := newTestReporter(t, cfg, c.Now)
	for i := range 3 {
		r.Report(context.Background(), Report{Kind: Kind5xx, Err: fmt.Errorf("failure %d", i), Route: fmt.Sprint("/r", i)})
	}
	c.Add(time.Second)
	msgs := m.WaitForMessages(t, 2, 10*time.Second)
	if len(msgs) != 2 || !strings.Contains(msgs[1].Subject, "2 alerts held back by the budget, 2 fingerprints") {
		t.Fatalf("got %d mails (%v), want the first failure and, unprompted, a digest of the 2 held back", len(msgs), msgs)
	}
	if st := r.Stats(); st.Digests != 1 {
		t.Errorf("digests = %d, want 1", st.Digests)
	}
}

func TestCloseFlushesTheQueue(t *testing.T) {
	m := servicetest.Mailpit(t)
	r, _ := newTestReporter(t, mailpitConfig(m), nil)
	for i := range 20 {
		r.Report(context.Background(), Report{Kind: Kind5xx, Err: fmt.Errorf("failure %d", i), Route: fmt.Sprint("/r", i)})
	}
	closeNow(t, r)
	// No waiting: Close returned after the last mail was accepted.
	if n := m.Count(t); n != 20 {
		t.Errorf("%d mails in Mailpit right after Close, want 20", n)
	}
	if st := r.Stats(); st.Sent != 20 || st.Queued != 0 {
		t.Errorf("stats = %+v", st)
	}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	return port
}

// blackhole accepts SMTP connections and never answers: a relay that hangs.
func blackhole(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().(*net.TCPAddr).Port
}

func TestSMTPDownIsCountedAndLoggedAtWarn(t *testing.T) {
	r, logs := newTestReporter(t, mailConfig("127.0.0.1", closedPort(t)), nil)
	r.Report(context.Background(), panicReport())
	closeNow(t, r)

	st := r.Stats()
	if st.Failed != 1 || st.Sent != 0 || !strings.Contains(st.LastError, "connection refused") || st.LastErrorAt.IsZero() {
		t.Errorf("stats = %+v, want 1 failure with the SMTP error", st)
	}
	recs := logs.Records(t, "alert e-mail not sent")
	if len(recs) != 1 || recs[0]["level"] != "WARN" || !strings.Contains(fmt.Sprint(recs[0]["error"]), "connection refused") {
		t.Errorf("failure log = %v, want one WARN record with the error", recs)
	}
	if strings.Contains(logs.String(), `"level":"ERROR"`) {
		t.Error("an SMTP failure was logged at error level, which could feed e-mail on error logs")
	}
	assertNoSecret(t, "LastError", st.LastError)
	assertNoSecret(t, "the logs", logs.String())
}

func TestFullQueueDropsWithoutBlocking(t *testing.T) {
	cfg := mailConfig("127.0.0.1", blackhole(t))
	cfg.QueueSize = 2
	cfg.Timeout = 30 * time.Second
	r, logs := newTestReporter(t, cfg, nil)

	// The worker hangs on the first mail; the queue holds two; the rest are
	// dropped, and Report returns at once all the same.
	for i := range 10 {
		r.Report(context.Background(), Report{Kind: Kind5xx, Err: fmt.Errorf("failure %d", i), Route: fmt.Sprint("/r", i)})
	}
	st := r.Stats()
	if st.Dropped < 7 || st.Dropped > 8 || st.Queued > 2 {
		t.Errorf("stats = %+v, want 7 or 8 dropped (one may be in flight) and at most 2 queued", st)
	}
	if n := len(logs.Records(t, "alert e-mail dropped: the queue is full or the reporter is closed")); n != 1 {
		t.Errorf("%d drop warnings, want 1 (at most one a minute)", n)
	}

	// Close cannot flush a hung relay: it gives up at the deadline and says so.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := r.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "unsent") {
		t.Errorf("Close = %v, want an error counting the unsent mails", err)
	}
}

func TestSendTest(t *testing.T) {
	m := servicetest.Mailpit(t)
	r, _ := newTestReporter(t, mailpitConfig(m), nil)
	if err := r.SendTest(context.Background()); err != nil {
		t.Fatalf("SendTest: %v", err)
	}
	msgs := m.Messages(t)
	if len(msgs) != 1 || msgs[0].Subject != "[notes-api] [staging] test: test message; e-mail settings work" ||
		!strings.Contains(msgs[0].Text, "api email-test") {
		t.Errorf("test mail = %+v", msgs)
	}

	down, _ := newTestReporter(t, mailConfig("127.0.0.1", closedPort(t)), nil)
	err := down.SendTest(context.Background())
	if err == nil || strings.ContainsAny(err.Error(), "\r\n") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("SendTest to a closed port = %v, want one line with the cause", err)
	}
}

func TestDisabledReporterDoesNothing(t *testing.T) {
	cfg := mailConfig("127.0.0.1", closedPort(t))
	cfg.Enabled = false
	cfg.Recipients = nil // not checked when disabled
	r, err := New(cfg, testInfo, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, rr := range []*Reporter{r, nil} {
		rr.Report(context.Background(), panicReport())
		if st := rr.Stats(); st != (Stats{}) {
			t.Errorf("stats = %+v, want zero with Enabled false", st)
		}
		if err := rr.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := rr.SendTest(context.Background()); err == nil {
			t.Error("SendTest on a disabled reporter succeeded")
		}
		h := slog.NewTextHandler(&bytes.Buffer{}, nil)
		if rr.LogHandler(h) != slog.Handler(h) {
			t.Error("LogHandler wrapped the handler of a disabled reporter")
		}
		ctx := context.Background()
		if got, end := rr.BeginRequest(ctx); got != ctx {
			t.Error("BeginRequest changed the context of a disabled reporter")
		} else {
			end()
		}
	}
}

func TestNewRejectsBadSettings(t *testing.T) {
	tests := []struct {
		name   string
		change func(*config.Email)
		want   string
	}{
		{"no recipients", func(c *config.Email) { c.Recipients = nil }, "no recipient"},
		{"bad recipient", func(c *config.Email) { c.Recipients = []string{"ops"} }, "email.recipients"},
		{"bad sender", func(c *config.Email) { c.From = "nobody" }, "email.from"},
		{"bad TLS policy", func(c *config.Email) { c.TLSPolicy = "sometimes" }, "tls_policy"},
		{"zero queue", func(c *config.Email) { c.QueueSize = 0 }, "queue_size"},
		{"no host", func(c *config.Email) { c.SMTPHost = "" }, "alert:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mailConfig("127.0.0.1", 25)
			tt.change(&cfg)
			_, err := New(cfg, testInfo, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want an error about %s", err, tt.want)
			}
		})
	}
}

// testCert writes a self-signed certificate for 127.0.0.1 and returns the
// cert and key paths and a pool trusting it.
func testCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pool
}

func TestTLSPoliciesAndAuthAgainstMailpit(t *testing.T) {
	certFile, keyFile, pool := testCert(t)
	trust := mail.WithTLSConfig(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	plain := servicetest.Mailpit(t)
	// This one refuses mail without STARTTLS, so a success proves the upgrade.
	starttls := servicetest.Mailpit(t, "--smtp-tls-cert", certFile, "--smtp-tls-key", keyFile, "--smtp-require-starttls",
		"--smtp-auth-accept-any")
	insecureAuth := servicetest.Mailpit(t, "--smtp-auth-accept-any", "--smtp-auth-allow-insecure")

	tests := []struct {
		name     string
		server   *servicetest.MailpitServer
		policy   string
		username string
		wantErr  string // "" for success
		wantUser string // the user Mailpit saw authenticate
	}{
		{"none, plain server", plain, "none", "", "", ""},
		{"opportunistic, plain server: sends in clear", plain, "opportunistic", "", "", ""},
		{"mandatory, plain server: refuses", plain, "mandatory", "", "STARTTLS", ""},
		{"opportunistic, STARTTLS server", starttls, "opportunistic", "", "", ""},
		{"mandatory, STARTTLS server", starttls, "mandatory", "", "", ""},
		{"none, server requiring STARTTLS: the server refuses", starttls, "none", "", "STARTTLS", ""},
		{"mandatory with authentication", starttls, "mandatory", "alerts@example.com", "", "alerts@example.com"},
		{"no password in clear: auth without TLS is refused", insecureAuth, "none", "alerts@example.com", "use tls_policy mandatory", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.server.DeleteAll(t)
			cfg := mailpitConfig(tt.server)
			cfg.TLSPolicy, cfg.Username = tt.policy, tt.username
			r, logs := newTestReporter(t, cfg, nil, trust)
			err := r.SendTest(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tt.wantErr)) {
					t.Fatalf("SendTest = %v, want an error about %s", err, tt.wantErr)
				}
				assertNoSecret(t, "the error", err.Error(), r.Stats().LastError, logs.String())
				t.Logf("error as shown: %s", err)
				return
			}
			if err != nil {
				t.Fatalf("SendTest: %v", err)
			}
			msgs := tt.server.Messages(t)
			if len(msgs) != 1 {
				t.Fatalf("%d mails, want 1", len(msgs))
			}
			if msgs[0].Username != tt.wantUser {
				t.Errorf("Mailpit saw SMTP user %q, want %q", msgs[0].Username, tt.wantUser)
			}
		})
	}
}

// TestSMTPCheck_RealMailpit: EHLO against a real Mailpit passes, a cut relay
// fails, and a relay that accepts but never greets fails at the timeout.
func TestSMTPCheck_RealMailpit(t *testing.T) {
	mp := servicetest.Mailpit(t)
	p := servicetest.NewProxy(t, net.JoinHostPort(mp.SMTPHost(), strconv.Itoa(mp.SMTPPort())))
	host, portStr, _ := net.SplitHostPort(p.Addr())
	port, _ := strconv.Atoi(portStr)
	c := SMTPCheck(config.Email{SMTPHost: host, SMTPPort: port, TLSPolicy: "none"}, 300*time.Millisecond, discard())
	run := func() health.CheckResult {
		return health.NewRunner(nil, 0, 2*time.Second, c).Run(context.Background()).Checks["smtp:responseTime"][0]
	}
	if r := run(); r.Status != health.Pass || r.ObservedUnit != "ms" {
		t.Fatalf("relay up: %+v", r)
	}
	p.Cut()
	if r := run(); r.Status != health.Fail || !strings.Contains(r.Output, "did not complete EHLO") {
		t.Errorf("relay cut: %+v", r)
	}
	p.Blackhole()
	if r := run(); r.Status != health.Fail || r.Output != "no answer within 300ms" {
		t.Errorf("relay hung: %+v", r)
	}
	if n := mp.Count(t); n != 0 {
		t.Errorf("the check sent %d messages; it must only say EHLO", n)
	}
}

// TestSMTPCheck_ImplicitTLS: a relay on implicit TLS (port 465, where the
// e-mail sender starts with a handshake) passes when the check dials TLS
// too; a plain EHLO there gets no greeting and fails at the timeout.
func TestSMTPCheck_ImplicitTLS(t *testing.T) {
	srv := httptest.NewTLSServer(nil) // only for its certificate
	srv.Close()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv.TLS)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { // a minimal relay: greet, answer EHLO, then QUIT
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				r := bufio.NewReader(c)
				_, _ = io.WriteString(c, "220 relay ready\r\n")
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					switch strings.ToUpper(strings.Fields(line + " x")[0]) {
					case "EHLO":
						_, _ = io.WriteString(c, "250-relay\r\n250 8BITMIME\r\n")
					case "QUIT":
						_, _ = io.WriteString(c, "221 bye\r\n")
						return
					default:
						_, _ = io.WriteString(c, "502 no\r\n")
					}
				}
			}()
		}
	}()
	host, portStr, _ := net.SplitHostPort(ln.Addr().String())
	port, _ := strconv.Atoi(portStr)
	run := func(c health.Check) health.CheckResult {
		return health.NewRunner(nil, 0, 2*time.Second, c).Run(context.Background()).Checks["smtp:responseTime"][0]
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs, ServerName: host}
	if r := run(smtpCheck(host, port, conf, time.Second, discard())); r.Status != health.Pass || r.ObservedUnit != "ms" {
		t.Errorf("implicit TLS relay, TLS check: %+v", r)
	}
	if r := run(smtpCheck(host, port, nil, 300*time.Millisecond, discard())); r.Status != health.Fail {
		t.Errorf("implicit TLS relay, plain check: %+v", r)
	}
}

// TestCheckTLS: the SMTP check dials implicit TLS exactly where the e-mail
// sender does (port 465 unless tls_policy is none).
func TestCheckTLS(t *testing.T) {
	for _, tt := range []struct {
		port    int
		policy  string
		wantTLS bool
	}{{465, "mandatory", true}, {465, "opportunistic", true}, {465, "none", false}, {587, "mandatory", false}, {25, "none", false}} {
		got := checkTLS(config.Email{SMTPHost: "relay.example", SMTPPort: tt.port, TLSPolicy: tt.policy})
		if (got != nil) != tt.wantTLS || (got != nil && got.ServerName != "relay.example") {
			t.Errorf("port %d, policy %s: %+v, want TLS %v", tt.port, tt.policy, got, tt.wantTLS)
		}
	}
}

// discard is a logger for the checks under test.
func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestReportTransition: a check that turns fail is one mail and its
// recovery another; staying failed, or moving between pass and warn, is
// none; the SMTP check's own failure is not mailed through the relay that
// failed, but its recovery is, with the mails lost meanwhile.
func TestReportTransition(t *testing.T) {
	m := servicetest.Mailpit(t)
	r, _ := newTestReporter(t, mailpitConfig(m), nil)
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for _, tr := range []health.Transition{
		{Check: "database:responseTime", From: health.Pass, To: health.Fail, Output: "no answer within 1s", Time: at, Runs: 40, Since: at.Add(-time.Hour)},
		{Check: "cache:responseTime", From: health.Pass, To: health.Warn, Time: at},
		{Check: "database:responseTime", From: health.Fail, To: health.Pass, Time: at.Add(3 * time.Minute), Runs: 14, Since: at},
		{Check: smtpCheckName, From: health.Pass, To: health.Fail, Output: "the SMTP relay did not complete EHLO", Time: at},
		{Check: smtpCheckName, From: health.Fail, To: health.Pass, Time: at.Add(time.Minute), Runs: 3, Since: at},
		// A check that fails without saying why, recovers at its next run,
		// then fails again within the hour: its second failure is mailed
		// too, saying how often it happened.
		{Check: "disk:free", From: health.Pass, To: health.Fail, Time: at},
		{Check: "disk:free", From: health.Fail, To: health.Pass, Time: at.Add(time.Second), Runs: 1},
		{Check: "disk:free", From: health.Pass, To: health.Fail, Time: at.Add(2 * time.Second)},
	} {
		r.ReportTransition(tr)
	}
	closeNow(t, r)
	msgs := m.Messages(t)
	var subjects []string
	for _, msg := range msgs {
		subjects = append(subjects, msg.Subject)
	}
	want := []string{
		"[notes-api] [staging] check: database:responseTime is failing: no answer within 1s",
		"[notes-api] [staging] check: database:responseTime recovered (pass) after 14 failed runs over 3m0s",
		"[notes-api] [staging] check: smtp:responseTime recovered (pass) after 3 failed runs over 1m0s",
		"[notes-api] [staging] check: disk:free is failing",
		"[notes-api] [staging] check: disk:free recovered (pass) after 1 failed run",
		"[notes-api] [staging] check: disk:free is failing (x2)",
	}
	if !slices.Equal(subjects, want) {
		t.Fatalf("subjects:\n%s\nwant:\n%s", strings.Join(subjects, "\n"), strings.Join(want, "\n"))
	}
	if body := msgs[0].Text; !strings.Contains(body, "Change:      pass -> fail") || !strings.Contains(body, "not while it stays failed") {
		t.Errorf("failing mail body:\n%s", body)
	}
	if body := msgs[len(msgs)-1].Text; !strings.Contains(body, "Occurrences: 2 since ") {
		t.Errorf("the second failure's mail does not count the occurrences:\n%s", body)
	}
}

// TestAlertsSent_WarnsWhileTheRelayRefusesEveryMail: a relay that answers
// its greeting (so smtp:responseTime passes) but refuses the password
// makes alerts:sent warn on /status, with the relay's error and never the
// password; the warning clears with the next mail that goes out.
func TestAlertsSent_WarnsWhileTheRelayRefusesEveryMail(t *testing.T) {
	certFile, keyFile, pool := testCert(t)
	trust := mail.WithTLSConfig(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	users := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(users, []byte("alerts@example.com:"+testPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mp := servicetest.Mailpit(t, "--smtp-tls-cert", certFile, "--smtp-tls-key", keyFile, "--smtp-require-starttls",
		"--smtp-auth-file", users)
	proxy := servicetest.NewProxy(t, net.JoinHostPort(mp.SMTPHost(), strconv.Itoa(mp.SMTPPort())))
	host, portStr, _ := net.SplitHostPort(proxy.Addr())
	port, _ := strconv.Atoi(portStr)
	sentCheck := func(r *Reporter) health.CheckResult {
		return health.NewRunner(nil, 0, 2*time.Second, r.StatusChecks()...).Run(context.Background()).Checks["alerts:sent"][0]
	}
	reporter := func(password string) (*Reporter, *servicetest.LogBuffer) {
		cfg := mailConfig(host, port)
		cfg.TLSPolicy, cfg.Username, cfg.Password = "mandatory", "alerts@example.com", password
		return newTestReporter(t, cfg, nil, trust)
	}

	wrong, logs := reporter("wrong-password-0123456789")
	if c := sentCheck(wrong); c.Status != health.Pass {
		t.Fatalf("before any mail: %+v, want pass", c)
	}
	wrong.Report(context.Background(), panicReport()) // an alert, as a failing request sends one
	closeNow(t, wrong)
	c := sentCheck(wrong)
	if c.Status != health.Warn || !strings.Contains(c.Output, "0 sent (0 of them digests), 1 failed") ||
		!strings.Contains(c.Output, "the last mail tried failed") || !strings.Contains(c.Output, "535") {
		t.Errorf("every mail refused: %+v, want warn with the relay's 535", c)
	}
	if strings.Contains(c.Output+logs.String(), "wrong-password-0123456789") {
		t.Error("the password is on /status or in the log")
	}

	right, _ := reporter(testPassword)
	proxy.Cut()
	if err := right.SendTest(context.Background()); err == nil {
		t.Fatal("sent through a cut relay")
	}
	if c := sentCheck(right); c.Status != health.Warn {
		t.Errorf("relay cut: %+v, want warn", c)
	}
	proxy.Restore()
	if err := right.SendTest(context.Background()); err != nil {
		t.Fatalf("relay back: %v", err)
	}
	if c := sentCheck(right); c.Status != health.Pass {
		t.Errorf("a mail went out again: %+v, want pass", c)
	}
	if n := len(mp.Messages(t)); n != 1 {
		t.Errorf("Mailpit has %d mails, want the 1 sent with the right password", n)
	}
}

// TestBudget_AFailedSendLosesNothing: a mail the relay refuses gives back
// what it carried, the list of what the budget held back and its own
// report, so a later mail lists them; the failed mail used to take them
// with it. Its budget slot stays spent and no digest is retried before
// email.digest_interval, so an outage of the relay costs no more attempts
// than the budget allows.
func TestBudget_AFailedSendLosesNothing(t *testing.T) {
	m := servicetest.Mailpit(t)
	proxy := servicetest.NewProxy(t, net.JoinHostPort(m.SMTPHost(), fmt.Sprint(m.SMTPPort())))
	host, port, _ := net.SplitHostPort(proxy.Addr())
	cfg := mailpitConfig(m)
	cfg.SMTPHost, cfg.SMTPPort = host, atoi(t, port)
	cfg.HourlyCap, cfg.NewFingerprintReserve, cfg.DigestInterval = 5, 2, 15*time.Minute
	clk := &clock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	r, _ := newTestReporter(t, cfg, clk.Now)
	digest := func() {
		r.mu.Lock()
		r.digestLocked(clk.Now())
		r.mu.Unlock()
	}

	for range 41 { // counts 1, 2, 4, 8 mailed; 16 and 32 held back
		r.Report(context.Background(), panicReport())
	}
	m.WaitForMessages(t, 4, 10*time.Second)
	if st := r.Stats(); st.Held != 2 {
		t.Fatalf("after the flood: %+v, want 2 held back", st)
	}

	proxy.Cut()
	clk.Add(16 * time.Minute) // what is held is old enough for a digest: this mail carries it
	r.Report(context.Background(), Report{Kind: Kind5xx, Err: errors.New("database is gone"), Method: "POST", Route: "/v1/notes", Status: 500})
	waitFor(t, func() bool { return r.Stats().Failed == 1 })
	if st := r.Stats(); st.Held != 3 {
		t.Errorf("after the refused send: %+v, want its report and the 2 it carried held again", st)
	}
	clk.Add(4 * time.Minute) // a digest would be due, but a send failed just now
	digest()
	time.Sleep(100 * time.Millisecond)
	if st := r.Stats(); st.Failed != 1 {
		t.Errorf("a digest was tried again at once after a failed send: %+v", st)
	}

	proxy.Restore()
	clk.Add(12 * time.Minute) // email.digest_interval after the failure
	digest()
	next := m.WaitForMessages(t, 5, 10*time.Second)[4]
	for _, want := range []string{"suppressed:", "3 mails of 2 fingerprints", "x41, 2 mails held", "database is gone"} {
		if !strings.Contains(next.Subject+"\n"+next.Text, want) {
			t.Errorf("the digest once the relay answers does not list %q:\n%s\n%s", want, next.Subject, next.Text)
		}
	}
	closeNow(t, r)
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
	}
}

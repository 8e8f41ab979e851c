package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prodready/service/internal/servicetest"
)

// mailEnv points the real program's alerts at m.
func mailEnv(m *servicetest.MailpitServer, extra map[string]string) map[string]string {
	env := map[string]string{
		"APP_EMAIL_ENABLED": "true", "APP_EMAIL_RECIPIENTS": "oncall@example.com",
		"APP_EMAIL_SMTP_HOST": m.SMTPHost(), "APP_EMAIL_SMTP_PORT": fmt.Sprint(m.SMTPPort()),
		"APP_EMAIL_TLS_POLICY": "none", "APP_STATUS_CACHE_TTL": "0s",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// alertCheck returns one check of GET /status.
func alertCheck(t *testing.T, a *app, name string) (code int, check map[string]any) {
	t.Helper()
	resp, body := a.do(t, "GET", "/status", "", "Authorization", "Bearer "+testToken)
	checks, _ := body["checks"].(map[string]any)
	list, _ := checks[name].([]any)
	if len(list) == 1 {
		check, _ = list[0].(map[string]any)
	}
	return resp.StatusCode, check
}

// TestAlerts_FloodOfOnePanicDoesNotHideADifferentFailure is finding 1 of
// issue 10 through the real program and a real Mailpit: 300 identical
// panics, then a different failure. The budget (5 an hour, 2 kept for new
// fingerprints) lets the second failure's mail through, that mail lists
// what the flood had held back, and /status counts both.
func TestAlerts_FloodOfOnePanicDoesNotHideADifferentFailure(t *testing.T) {
	m := servicetest.Mailpit(t)
	a := startApp(t, mailEnv(m, map[string]string{"APP_EMAIL_HOURLY_CAP": "5", "APP_EMAIL_NEW_FINGERPRINT_RESERVE": "2"}))

	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := range 50 {
				req, _ := http.NewRequest(http.MethodGet, a.url+"/debug/panic", nil)
				req.Header.Set("X-Request-ID", fmt.Sprintf("flood-%d-%d", w, i))
				resp, err := a.client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusInternalServerError || !isProblem(resp) {
					t.Errorf("GET /debug/panic: %d %s, want a 500 problem", resp.StatusCode, resp.Header.Get("Content-Type"))
				}
			}
		})
	}
	wg.Wait()
	m.WaitForMessages(t, 4, 20*time.Second) // counts 1, 2, 4 and 8; 16 ... 256 held back

	resp, _ := a.do(t, "GET", "/debug/error", "", "X-Request-ID", "the-different-failure")
	if resp.StatusCode != http.StatusInternalServerError || !isProblem(resp) {
		t.Fatalf("GET /debug/error: %d, want a 500 problem", resp.StatusCode)
	}
	msgs := m.WaitForMessages(t, 5, 20*time.Second)
	second := msgs[4]
	if !strings.Contains(second.Subject, "5xx: debug: a deliberate failure") || !strings.Contains(second.Text, "the-different-failure") {
		t.Fatalf("the different failure's mail did not arrive; the 5th mail is %q", second.Subject)
	}
	for _, want := range []string{"Held back by the alert budget since", "5 mails of 1 fingerprints (300 occurrences)",
		"panic      x300, 5 mails held", "at GET /debug/panic", "debug: a deliberate panic"} {
		if !strings.Contains(second.Text, want) {
			t.Errorf("the next mail does not list what the flood held back (%q):\n%s", want, second.Text)
		}
	}

	// /status shows the figures (sent is counted once the relay has
	// answered, which may be just after Mailpit stored the mail).
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, sent := alertCheck(t, a, "alerts:sent")
		_, held := alertCheck(t, a, "alerts:suppressed")
		if sent["observedValue"] == float64(5) && held["observedValue"] == float64(5) {
			t.Logf("/status: alerts:sent %q; alerts:suppressed %q", sent["output"], held["output"])
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/status: alerts:sent %v, alerts:suppressed %v; want 5 and 5", sent, held)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopApp(t, a)
	if n := m.Count(t); n != 5 {
		t.Errorf("%d mails after shutdown, want 5 (nothing left held back)", n)
	}
}

// TestAlerts_RedisKilledGivesOneFailingAndOneRecoveredMail: a real
// dependency dies while monitors poll /status (every poll runs the checks:
// status.cache_ttl 0). Mailpit receives exactly one mail when
// cache:responseTime turns fail and one when it recovers, however many
// polls saw it failing.
func TestAlerts_RedisKilledGivesOneFailingAndOneRecoveredMail(t *testing.T) {
	m := servicetest.Mailpit(t)
	redis := servicetest.StartRedis(t)
	a := startApp(t, mailEnv(m, map[string]string{"REDIS_URL": redis.URL()}))

	poll := func(want int, n int) {
		t.Helper()
		seen := 0
		for deadline := time.Now().Add(20 * time.Second); seen < n; {
			if code, _ := alertCheck(t, a, "cache:responseTime"); code == want {
				seen++
			} else if seen > 0 || time.Now().After(deadline) {
				t.Fatalf("GET /status answered %d, want %d", code, want)
			}
		}
	}
	poll(http.StatusOK, 5)
	redis.Kill()
	poll(http.StatusInternalServerError, 30)
	failing := m.WaitForMessages(t, 1, 20*time.Second)[0]
	redis.Start()
	poll(http.StatusOK, 30)
	stopApp(t, a)

	msgs := m.Messages(t)
	if len(msgs) != 2 {
		var subjects []string
		for _, msg := range msgs {
			subjects = append(subjects, msg.Subject)
		}
		t.Fatalf("%d mails, want 2 (failing, recovered): %q", len(msgs), subjects)
	}
	if !strings.Contains(failing.Subject, "check: cache:responseTime is failing: redis did not answer PING") {
		t.Errorf("first mail %q, want cache:responseTime failing", failing.Subject)
	}
	if !strings.Contains(msgs[1].Subject, "check: cache:responseTime recovered (pass) after") ||
		!strings.Contains(msgs[1].Text, "Change:      fail -> pass") {
		t.Errorf("second mail %q, want cache:responseTime recovered:\n%s", msgs[1].Subject, msgs[1].Text)
	}
	t.Logf("mails: %q, %q", failing.Subject, msgs[1].Subject)
}

package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prodready/service/internal/servicetest"
)

// gatusConfig is the availability monitor's configuration as the cluster
// and make monitor use it (deploy/monitoring/gatus), not a test copy.
const gatusConfig = "../../deploy/monitoring/gatus/config.yaml"

// TestGatus_MailsWhenStatusFailsThenRecovers runs the real program on Redis
// behind a TCP proxy and a real Gatus polling its /status every second with
// deploy/monitoring/gatus/config.yaml. Cutting Redis makes /status answer
// 500 and Mailpit receive the "triggered" mail after the configured three
// failed polls; restoring it, the "resolved" mail after two good ones. The
// mails are read from Mailpit, since Gatus only logs a send that fails; the
// status token appears in neither the mails nor Gatus's output.
func TestGatus_MailsWhenStatusFailsThenRecovers(t *testing.T) {
	t.Parallel() // own ports, database and child processes; it must never signal os.Getpid() (the in-process app shares the SIGHUP handler)
	mp := servicetest.Mailpit(t)
	redisURL, redis := proxied(t, servicetest.URL(t, "TEST_REDIS_URL", "Redis"))
	a := startApp(t, map[string]string{
		"REDIS_URL":            redisURL,
		"APP_STATUS_CACHE_TTL": "0s", // every poll runs the checks
		"APP_CACHE_TIMEOUT":    "2s", // a cut is a refused connection, seen at once; a loaded machine must not fail the healthy polls
		"APP_CACHE_COOLDOWN":   "200ms",
	})
	const endpoint = "notes-api-status"
	g := servicetest.Gatus(t, gatusConfig, map[string]string{
		"NOTES_API_URL":       a.url,
		"STATUS_TOKEN":        testToken,
		"GATUS_INTERVAL":      "1s",
		"GATUS_SMTP_HOST":     mp.SMTPHost(),
		"GATUS_SMTP_PORT":     strconv.Itoa(mp.SMTPPort()),
		"GATUS_SMTP_FROM":     "gatus@example.test",
		"GATUS_SMTP_USERNAME": "",
		"GATUS_SMTP_PASSWORD": "",
		"GATUS_ALERT_TO":      "oncall@example.test",
	})
	const wait = 60 * time.Second // a bound for a loaded machine; Gatus polls every second
	lastN := func(n int, success bool) func([]servicetest.GatusResult) bool {
		return func(r []servicetest.GatusResult) bool {
			if len(r) < n {
				return false
			}
			for _, p := range r[len(r)-n:] {
				if p.Success != success {
					return false
				}
			}
			return true
		}
	}

	// Healthy: polls succeed, nobody is mailed.
	g.WaitForResults(t, endpoint, "three good polls", wait, lastN(3, true))
	if n := mp.Count(t); n != 0 {
		t.Fatalf("%d mails while /status passes, want none", n)
	}

	steps := []struct {
		name    string
		act     func()
		subject string
		body    []string
	}{
		{"Redis cut", redis.Cut, endpoint + ": Alert triggered", []string{
			"failed 3 time(s) in a row",
			"GET /status is not 200 with status pass or warn",
			"❌ [STATUS] (500) == 200",
			"❌ [BODY].status (fail) == any(pass, warn)",
		}},
		{"Redis restored", redis.Restore, endpoint + ": Alert resolved", []string{
			"passing successfully 2 time(s) in a row",
			"✅ [STATUS] == 200",
		}},
	}
	for i, s := range steps {
		s.act()
		msgs := mp.WaitForMessages(t, i+1, wait)
		if len(msgs) != i+1 {
			t.Fatalf("after %s: %d mails, want %d", s.name, len(msgs), i+1)
		}
		m := msgs[i]
		first, _, _ := strings.Cut(m.Text, "\n")
		t.Logf("after %s: Mailpit received %q: %s", s.name, m.Subject, first)
		if m.Subject != s.subject || strings.Join(m.To, ",") != "oncall@example.test" || m.From != "gatus@example.test" {
			t.Errorf("after %s: mail %q from %s to %v, want %q to oncall@example.test", s.name, m.Subject, m.From, m.To, s.subject)
		}
		for _, want := range s.body {
			if !strings.Contains(m.Text, want) {
				t.Errorf("after %s: the mail does not say %q:\n%s", s.name, want, m.Text)
			}
		}
		if strings.Contains(m.Raw, testToken) {
			t.Errorf("after %s: the mail carries the status token", s.name)
		}
	}
	if strings.Contains(g.Output(), testToken) {
		t.Error("Gatus's output carries the status token")
	}
	// The service says what Gatus only sees as a 500.
	if !strings.Contains(a.logs.String(), `"msg":"health: redis check failed"`) {
		t.Error("the service did not log the failing Redis check")
	}
}

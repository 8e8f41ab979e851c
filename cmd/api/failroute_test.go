package main

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/problem"
	"github.com/prodready/service/internal/servicetest"
)

// TestServe_FailRoutesOnlyWhereAllowed: the routes that fail on purpose
// (GET /debug/panic, /debug/error) are served in development, in staging
// only with debug.fail_route, and never in production, whose configuration
// refuses the key (exit 2 like every invalid key). That the routes answer
// where served is TestAlerts_FloodOfOnePanicDoesNotHideADifferentFailure;
// that they are 404 where not is TestFailRoutes (internal/server).
func TestServe_FailRoutesOnlyWhereAllowed(t *testing.T) {
	base := map[string]string{"DATABASE_URL": "postgres://db/x", "STATUS_TOKENS": "0123456789abcdef0123",
		"APP_NEWRELIC_ENABLED": "false"}
	for _, tt := range []struct {
		env, key string
		want     bool
	}{
		{"development", "", true},
		{"staging", "", false},
		{"staging", "true", true},
		{"production", "", false},
	} {
		l, err := config.Load("", func(k string) string {
			switch k {
			case "APP_ENVIRONMENT":
				return tt.env
			case "APP_DEBUG_FAIL_ROUTE":
				return tt.key
			}
			return base[k]
		}, os.ReadFile)
		if err != nil {
			t.Fatalf("%s, fail_route %q: %v", tt.env, tt.key, err)
		}
		if got := failRoutes(l.Config); got != tt.want {
			t.Errorf("%s, debug.fail_route %q: routes served %v, want %v", tt.env, tt.key, got, tt.want)
		}
	}
	_, err := config.Load("", func(k string) string {
		if k == "APP_DEBUG_FAIL_ROUTE" {
			return "true"
		}
		return base[k]
	}, os.ReadFile)
	if err == nil || !strings.Contains(err.Error(), "debug.fail_route (env APP_DEBUG_FAIL_ROUTE): routes that fail on purpose are refused in production") {
		t.Errorf("production with debug.fail_route: %v, want it refused naming the key", err)
	}
}

// TestServe_FailRoutesNeedATokenOutsideDevelopment: in staging the routes
// that fail on purpose are for the operators. Through the real program, a
// real PostgreSQL and a real Mailpit: a stranger gets a 401 problem and no
// stack-trace mail, so cannot spend the alert budget; after
// status.token_failure_limit wrong tokens the address gets 429 with
// Retry-After; the status token is still served from there, with its mail.
func TestServe_FailRoutesNeedATokenOutsideDevelopment(t *testing.T) {
	m := servicetest.Mailpit(t)
	a := startApp(t, mailEnv(m, map[string]string{
		"APP_ENVIRONMENT": "staging", "APP_DEBUG_FAIL_ROUTE": "true", "APP_NEWRELIC_ENABLED": "false",
		"DATABASE_URL": servicetest.PostgresURL(t), "APP_STATUS_TOKEN_FAILURE_LIMIT": "3",
	}))
	for _, tt := range []struct {
		name, path, auth string
		want             int
		wantType         string
	}{
		{"no token", "/debug/panic", "", http.StatusUnauthorized, problem.TypeUnauthorized},
		{"a wrong token", "/debug/error", "Bearer not-the-token-0123456789", http.StatusUnauthorized, problem.TypeUnauthorized},
		{"another scheme", "/debug/panic", "Basic " + testToken, http.StatusUnauthorized, problem.TypeUnauthorized},
		{"the limit reached", "/debug/panic", "", http.StatusTooManyRequests, problem.TypeTooManyRequests},
		{"the token, from the blocked address", "/debug/panic", "Bearer " + testToken, http.StatusInternalServerError, problem.TypeInternal},
	} {
		id := "fail-route-" + strings.NewReplacer(" ", "-", ",", "").Replace(tt.name)
		resp, body := a.do(t, http.MethodGet, tt.path, "", "Authorization", tt.auth, "X-Request-ID", id)
		if resp.StatusCode != tt.want || !isProblem(resp) || body["type"] != tt.wantType || body["request_id"] != id {
			t.Errorf("%s: %d %s %v, want %d %s naming request %s", tt.name, resp.StatusCode, resp.Header.Get("Content-Type"), body, tt.want, tt.wantType, id)
		}
		switch tt.want {
		case http.StatusUnauthorized:
			if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="status"` {
				t.Errorf("%s: WWW-Authenticate %q, want the scheme to use", tt.name, got)
			}
		case http.StatusTooManyRequests:
			if resp.Header.Get("Retry-After") == "" {
				t.Errorf("%s: 429 without Retry-After", tt.name)
			}
		}
	}
	// Mails leave in order: by the time the operator's is in, a stranger's
	// would be too.
	msgs := m.WaitForMessages(t, 1, 20*time.Second)
	stopApp(t, a)
	if n := m.Count(t); n != 1 || !strings.Contains(msgs[0].Text, "fail-route-the-token") {
		t.Errorf("%d mails (the first %q), want only the operator's panic", n, msgs[0].Subject)
	}
	if strings.Contains(a.logs.String(), testToken) || strings.Contains(a.logs.String(), "not-the-token") {
		t.Error("a token or a guess appears in the service's log")
	}
}

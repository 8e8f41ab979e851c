package main

import (
	"os"
	"strings"
	"testing"

	"github.com/prodready/service/internal/config"
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

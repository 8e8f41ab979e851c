package main

import (
	"net"
	"strings"
	"testing"

	"github.com/prodready/service/internal/servicetest"
)

// TestServe_StartupSaysWhatIsRisky: settings an operator may regret are
// said at start, in the log, and what they switch on shows on /status; a
// dependency that is down at start is logged, and the service serves
// anyway.
func TestServe_StartupSaysWhatIsRisky(t *testing.T) {
	t.Parallel() // in-process apps of its own; it never signals the process
	syslogd, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer syslogd.Close()
	go func() { // a daemon that takes connections and keeps each open until the test ends (the deferred closes)
		for {
			c, err := syslogd.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	tests := []struct {
		name  string
		env   map[string]string
		log   string // a line the start-up log must have
		check string // a check /status must list, "" for none
	}{
		{"status token allowed in the query string", map[string]string{"APP_STATUS_ALLOW_QUERY_TOKEN": "true"},
			`"level":"WARN","msg":"status.allow_query_token is on`, ""},
		{"overload shedding off", map[string]string{"APP_HTTP_MAX_IN_FLIGHT": "0"},
			`"msg":"overload shedding is off (http.max_in_flight is 0)"`, ""},
		{"Redis down at start", map[string]string{"APP_CACHE_REDIS_URL": "redis://" + servicetest.ClosedPort(t) + "/0"},
			`"level":"WARN","msg":"redis unreachable at start; reads go to the database until it answers"`, "cache:responseTime"},
		{"syslog on", map[string]string{"APP_LOG_SYSLOG_ENABLED": "true", "APP_LOG_SYSLOG_NETWORK": "tcp", "APP_LOG_SYSLOG_ADDRESS": syslogd.Addr().String()},
			`"msg":"http server listening"`, "syslog:connection"},
		{"backup check on with dumps", map[string]string{"APP_BACKUP_CHECK": "on"},
			`"msg":"http server listening"`, "backup:age"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := startApp(t, tt.env)
			if !strings.Contains(a.logs.String(), tt.log) {
				t.Errorf("the start-up log has no %s:\n%s", tt.log, a.logs.String())
			}
			if resp, _ := a.do(t, "GET", "/v1/notes", ""); resp.StatusCode != 200 {
				t.Errorf("GET /v1/notes: %d, want 200 whatever the settings", resp.StatusCode)
			}
			if tt.check == "" {
				return
			}
			_, st := a.do(t, "GET", "/status", "", "Authorization", "Bearer "+testToken)
			checks, _ := st["checks"].(map[string]any)
			if _, ok := checks[tt.check]; !ok {
				t.Errorf("/status lists no %s check: %v", tt.check, st)
			}
		})
	}
}

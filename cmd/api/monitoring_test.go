package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prodready/service/internal/monitoring"
	"github.com/prodready/service/internal/servicetest"
)

// monitoredEnv points the real program's agent at the fake collector.
func monitoredEnv(col *servicetest.Collector, extra map[string]string) map[string]string {
	env := map[string]string{
		"NEW_RELIC_LICENSE_KEY":          servicetest.LicenseKey,
		"NEW_RELIC_APP_NAME":             "notes-e2e",
		"APP_NEWRELIC_LABELS":            "team:notes,tier:api",
		"APP_NEWRELIC_COLLECTOR_HOST":    col.Host(),
		"APP_NEWRELIC_COLLECTOR_CA_FILE": col.CAFile(),
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// stopApp stops the program and waits for it, so the agent's shutdown
// flush has happened.
func stopApp(t *testing.T, a *app) {
	t.Helper()
	a.stop()
	select {
	case err := <-a.done:
		if err != nil {
			t.Fatalf("the service stopped with %v", err)
		}
		a.done <- nil // for startApp's cleanup
	case <-time.After(30 * time.Second):
		t.Fatal("the service did not stop")
	}
}

// TestServe_ReportsToNewRelic drives the real program over HTTP, on SQLite
// and on PostgreSQL with Redis, and checks what reached the collector: a
// transaction per route named by its template, datastore segments, logs in
// context, the connect payload, the check on /status, the shutdown flush.
func TestServe_ReportsToNewRelic(t *testing.T) {
	for _, tt := range []struct {
		name     string
		env      func(t *testing.T) map[string]string
		segments []string
	}{
		{"SQLite", func(*testing.T) map[string]string { return nil },
			[]string{"Datastore/statement/SQLite/notes/insert", "Datastore/statement/SQLite/notes/select"}},
		{"PostgreSQL and Redis", func(t *testing.T) map[string]string {
			return map[string]string{"DATABASE_URL": servicetest.PostgresURL(t), "REDIS_URL": servicetest.URL(t, "TEST_REDIS_URL", "Redis"),
				"APP_CACHE_KEY_PREFIX": "e2e-nr-" + fmt.Sprint(time.Now().UnixNano()) + ":"}
		}, []string{"Datastore/statement/Postgres/notes/insert", "Datastore/statement/Postgres/notes/select", "Datastore/operation/Redis/get"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			col := servicetest.StartCollector(t)
			a := startApp(t, monitoredEnv(col, tt.env(t)))
			waitFor(t, a.logs, "new relic agent started")
			// Connected, as /status shows it; transactions before that are not reported.
			if resp, body := waitCheck(t, a, "pass"); resp.StatusCode != 200 {
				t.Errorf("status with the agent connected: %d %v", resp.StatusCode, body)
			}

			notesScenario(t, a)
			a.do(t, "GET", "/livez", "")
			a.do(t, "GET", "/readyz", "")
			a.do(t, "GET", "/status", "", "Authorization", "Bearer "+testToken)

			col.WaitFor(t, "transactions and datastore spans", 15*time.Second, func(c *servicetest.Collector) bool {
				return txnNames(c)["WebTransaction/Go/DELETE /v1/notes/:id"] > 0 && spansNamed(c, tt.segments...)
			})
			names := txnNames(col)
			for _, n := range []string{"POST /v1/notes", "GET /v1/notes/:id", "GET /v1/notes", "PUT /v1/notes/:id", "DELETE /v1/notes/:id", "GET /status"} {
				if names["WebTransaction/Go/"+n] == 0 {
					t.Errorf("no transaction %q; got %v", n, names)
				}
			}
			for n := range names {
				if strings.Contains(n, "/livez") || strings.Contains(n, "/readyz") || strings.Contains(n, "/v1/notes/0") {
					t.Errorf("transaction %q: probes are skipped and names are templates", n)
				}
			}
			for _, e := range col.Events("analytic_event_data") {
				if e.Intrinsics["name"] == "WebTransaction/Go/POST /v1/notes" && e.User["request_id"] == "e2e-create-1" {
					goto requestIDSeen
				}
			}
			t.Error("the create transaction does not carry the request ID the client sent")
		requestIDSeen:

			// Logs in context: the access log line of a request is forwarded
			// with the trace and span of its transaction, and the local JSON
			// line carries the same IDs.
			col.WaitFor(t, "forwarded logs", 10*time.Second, func(c *servicetest.Collector) bool { return forwardedFor(c, "e2e-create-1") != nil })
			fwd := forwardedFor(col, "e2e-create-1")
			if !traceHasSpan(col, fwd["trace.id"], fwd["span.id"]) {
				t.Errorf("forwarded log %v: its span is not in its trace", fwd)
			}
			local := localRequestLine(t, a.logs, "e2e-create-1")
			if local["trace.id"] != fwd["trace.id"] || local["span.id"] != fwd["span.id"] {
				t.Errorf("local line %v does not carry the forwarded trace.id/span.id %v/%v", local, fwd["trace.id"], fwd["span.id"])
			}

			// Name, labels and no cloud detection, as the agent announced itself.
			c := col.Connect()
			if fmt.Sprint(c["app_name"]) != "[notes-e2e]" || !strings.Contains(fmt.Sprint(c["labels"]), "label_type:team label_value:notes") {
				t.Errorf("connect payload: app_name %v labels %v", c["app_name"], c["labels"])
			}
			if u, _ := c["utilization"].(map[string]any); u["vendors"] != nil {
				t.Errorf("cloud vendors detected: %v", u["vendors"])
			}

			// Shutdown flushes the metrics, custom ones included.
			stopApp(t, a)
			m := col.Metrics()
			for _, want := range append([]string{"WebTransaction/Go/POST /v1/notes", "Custom/HTTP/FailedRequests",
				"Custom/Cache/Failures", "Custom/Alerts/MailsSent", "Custom/Logging/SyslogDropped", "Custom/HTTP/Shed"}, tt.segments...) {
				if _, ok := m[want]; !ok {
					t.Errorf("metric %s not flushed at shutdown", want)
				}
			}
			if strings.Contains(a.logs.String(), servicetest.LicenseKey) {
				t.Error("the license key appears in the log")
			}
		})
	}
}

// TestServe_RefusedLicenseFailsTheCheck: New Relic refusing the license key
// turns newrelic:connected, and so /status, to fail; the API still serves.
func TestServe_RefusedLicenseFailsTheCheck(t *testing.T) {
	col := servicetest.StartCollector(t)
	col.Refuse(http.StatusUnauthorized)
	a := startApp(t, monitoredEnv(col, nil))
	resp, body := waitCheck(t, a, "fail")
	if resp.StatusCode != http.StatusInternalServerError || body["status"] != "fail" {
		t.Errorf("status with a refused license: %d %v", resp.StatusCode, body)
	}
	if resp, _ := a.do(t, "GET", "/v1/notes", ""); resp.StatusCode != 200 {
		t.Errorf("the API stopped serving: %d", resp.StatusCode)
	}
}

// TestServe_MonitoringOffIsOneLine: without a license key the program says
// so once at start, and registers no check.
func TestServe_MonitoringOffIsOneLine(t *testing.T) {
	a := startApp(t, nil)
	if n := strings.Count(a.logs.String(), "monitoring is off: no New Relic license key"); n != 1 {
		t.Errorf("%d start-up lines about monitoring being off, want 1:\n%s", n, a.logs.String())
	}
	_, body := a.do(t, "GET", "/status", "", "Authorization", "Bearer "+testToken)
	if _, ok := body["checks"].(map[string]any)[monitoring.CheckName]; ok {
		t.Error("a newrelic:connected check without an agent")
	}
}

// waitCheck polls /status until newrelic:connected has the status want.
func waitCheck(t *testing.T, a *app, want string) (*http.Response, map[string]any) {
	t.Helper()
	var resp *http.Response
	var body map[string]any
	for range 100 {
		resp, body = a.do(t, "GET", "/status", "", "Authorization", "Bearer "+testToken)
		if list, _ := body["checks"].(map[string]any)[monitoring.CheckName].([]any); len(list) > 0 {
			if list[0].(map[string]any)["status"] == want {
				return resp, body
			}
		}
		time.Sleep(100 * time.Millisecond) // the status cache holds results 2s
	}
	t.Fatalf("newrelic:connected never became %s: %v", want, body["checks"])
	return nil, nil
}

func txnNames(c *servicetest.Collector) map[string]int {
	out := map[string]int{}
	for _, e := range c.Events("analytic_event_data") {
		out[fmt.Sprint(e.Intrinsics["name"])]++
	}
	return out
}

func spansNamed(c *servicetest.Collector, names ...string) bool {
	seen := map[any]bool{}
	for _, e := range c.Events("span_event_data") {
		seen[e.Intrinsics["name"]] = true
	}
	for _, n := range names {
		if !seen[n] {
			return false
		}
	}
	return true
}

func traceHasSpan(c *servicetest.Collector, traceID, spanID any) bool {
	for _, e := range c.Events("span_event_data") {
		if e.Intrinsics["traceId"] == traceID && e.Intrinsics["guid"] == spanID {
			return true
		}
	}
	return false
}

// forwardedFor is the forwarded access log line of the request with that ID.
func forwardedFor(c *servicetest.Collector, requestID string) map[string]any {
	for _, l := range c.Logs() {
		if attrs, _ := l["attributes"].(map[string]any); l["message"] == "request" && attrs["request_id"] == requestID {
			return l
		}
	}
	return nil
}

func localRequestLine(t *testing.T, logs *servicetest.LogBuffer, requestID string) map[string]any {
	t.Helper()
	for _, line := range strings.Split(logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "request" && m["request_id"] == requestID {
			return m
		}
	}
	t.Fatalf("no local access log line for %s", requestID)
	return nil
}

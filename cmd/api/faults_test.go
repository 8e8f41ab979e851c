package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prodready/service/internal/servicetest"
)

// TestServe_DatabasePartition runs the service on PostgreSQL behind a proxy
// and partitions the network (every byte dropped, both ways, no reset):
// writes and uncached reads answer 503 problem+json with Retry-After while
// the partition lasts, more of them than the pool has connections, so the
// pool cannot wedge; a cached note is still served; once the network
// returns, the same requests succeed without a restart.
func TestServe_DatabasePartition(t *testing.T) {
	u, err := url.Parse(servicetest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := servicetest.NewProxy(t, u.Host)
	u.Host = proxy.Addr()
	const requestTimeout = 700 * time.Millisecond
	a := startApp(t, map[string]string{
		"DATABASE_URL":                   u.String(),
		"APP_DATABASE_REQUEST_TIMEOUT":   requestTimeout.String(),
		"APP_DATABASE_CONNECT_TIMEOUT":   "300ms",
		"APP_DATABASE_STATEMENT_TIMEOUT": "500ms",
		"APP_DATABASE_MAX_OPEN_CONNS":    "3",
		"APP_DATABASE_MAX_IDLE_CONNS":    "3",
	})

	cachedPath := a.createNote(t, "cached", "create before the partition")
	if resp, _ := a.do(t, "GET", cachedPath, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("get before the partition: %d", resp.StatusCode) // this read fills the cache
	}
	uncachedPath := a.createNote(t, "never read", "create before the partition")

	proxy.Partition()
	// Three times the pool size, at once: without a bound on each request's
	// database work the first three would hold every connection for as long
	// as the partition lasts, and the rest would queue behind them.
	type call struct{ method, path, body string }
	calls := []call{}
	for range 3 {
		calls = append(calls,
			call{"POST", "/v1/notes", `{"title":"during the partition"}`},
			call{"GET", uncachedPath, ""},
			call{"GET", "/v1/notes", ""},
		)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var slowest time.Duration
	for _, c := range calls {
		wg.Go(func() {
			start := time.Now()
			resp, body := a.do(t, c.method, c.path, c.body)
			mu.Lock()
			slowest = max(slowest, time.Since(start))
			mu.Unlock()
			if resp.StatusCode != http.StatusServiceUnavailable || !isProblem(resp) ||
				body["type"] != "/problems/unavailable" || resp.Header.Get("Retry-After") == "" {
				t.Errorf("%s %s during the partition: %d %s Retry-After=%q %v", c.method, c.path,
					resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Retry-After"), body)
			}
		})
	}
	wg.Wait()
	t.Logf("%d requests during the partition all answered; slowest %s (database.request_timeout %s)", len(calls), slowest, requestTimeout)
	if resp, body := a.do(t, "GET", cachedPath, ""); resp.StatusCode != http.StatusOK || body["title"] != "cached" {
		t.Errorf("cached note during the partition: %d %v; want it served from the cache", resp.StatusCode, body)
	}
	// Past five failures in a row the store fails fast: the next requests
	// that need the database get their 503 at once instead of waiting the
	// timeout each (holding a shedding slot meanwhile).
	for i := range 5 {
		start := time.Now()
		resp, _ := a.do(t, "GET", uncachedPath, "")
		if took := time.Since(start); resp.StatusCode != http.StatusServiceUnavailable || took > requestTimeout/2 {
			t.Errorf("uncached read %d once the store fails fast: %d in %s, want 503 well within database.request_timeout %s", i, resp.StatusCode, took, requestTimeout)
		}
	}
	logs := a.logs.String()
	if !strings.Contains(logs, `"msg":"notes store unavailable"`) {
		t.Error("the unavailable database is not logged")
	}
	if strings.Contains(logs, `"msg":"notes store failed"`) {
		t.Error("an unavailable database is logged as an unexpected store failure")
	}

	proxy.Restore()
	// Recovery needs no restart: the pool drops the connections the
	// deadlines broke and dials new ones.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, _ := a.do(t, "POST", "/v1/notes", `{"title":"after the partition"}`)
		if resp.StatusCode == http.StatusCreated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes still fail 10 s after the network returned: %d", resp.StatusCode)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if resp, _ := a.do(t, "GET", uncachedPath, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("uncached read after the partition: %d", resp.StatusCode)
	}
}

// TestServe_FrozenThenDeadRedis runs the service on a Redis of the test's
// own, freezes it (SIGSTOP), then kills it: reads keep answering 200 from
// the database, only the first cache.failure_threshold calls wait for
// Redis, and the log says so in a few lines, not one per request. When Redis
// returns, the breaker's probe finds it and the end of the outage is logged.
func TestServe_FrozenThenDeadRedis(t *testing.T) {
	srv := servicetest.StartRedis(t)
	a := startApp(t, map[string]string{
		"REDIS_URL":                   srv.URL(),
		"APP_CACHE_TIMEOUT":           "200ms",
		"APP_CACHE_FAILURE_THRESHOLD": "3",
		"APP_CACHE_COOLDOWN":          "300ms",
	})
	path := a.createNote(t, "read through", "create")
	a.logs.Take(t)

	srv.Freeze()
	for i := range 50 {
		if resp, body := a.do(t, "GET", path, ""); resp.StatusCode != http.StatusOK || body["title"] != "read through" {
			t.Fatalf("GET %d with Redis frozen: %d %v", i, resp.StatusCode, body)
		}
	}
	srv.Thaw()
	srv.Kill()
	for i := range 50 {
		if resp, _ := a.do(t, "GET", path, ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %d with Redis dead: %d", i, resp.StatusCode)
		}
	}
	var warns []string
	for _, r := range a.logs.Take(t) {
		if r["level"] == "WARN" || r["level"] == "ERROR" {
			warns = append(warns, r["msg"].(string))
		}
	}
	// The first 3 failures (one per request), the outage's start, and at
	// most one more per probe: a handful for 100 requests, not 100.
	if len(warns) > 10 {
		t.Errorf("%d warn lines for 100 reads with Redis frozen, then dead; want a handful:\n%s", len(warns), strings.Join(warns, "\n"))
	}
	t.Logf("100 reads with Redis frozen, then dead: %d warn lines: %q", len(warns), warns)

	srv.Start()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(a.logs.String(), `"msg":"cache answering again; using it"`) {
		if time.Now().After(deadline) {
			t.Fatal("no end of the cache outage logged 10 s after Redis came back")
		}
		a.do(t, "GET", path, "")
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServe_FailingStatusLogsAFewLines: 100 monitors poll /status while
// its Redis check fails (a Redis of the test's own, killed). The checks run
// again and again (no result cache), yet the log gets a few lines: the
// check turning fail with its error, and the first failing answer of the
// status route; the hundreds of polls after it add nothing until
// status.repeat_log_interval passes. Bounded by a count of polls, not time.
func TestServe_FailingStatusLogsAFewLines(t *testing.T) {
	srv := servicetest.StartRedis(t)
	a := startApp(t, map[string]string{
		"REDIS_URL":                      srv.URL(),
		"APP_LOG_LEVEL":                  "info",
		"APP_STATUS_CACHE_TTL":           "0s",
		"APP_STATUS_REPEAT_LOG_INTERVAL": "1h",
	})
	srv.Kill()
	a.logs.Take(t)
	const pollers, polls = 100, 4
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for range pollers {
		wg.Go(func() {
			for range polls {
				req, _ := http.NewRequestWithContext(t.Context(), "GET", a.url+"/status", nil)
				req.Header.Set("Authorization", "Bearer "+testToken)
				resp, err := a.client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				_ = resp.Body.Close()
				mu.Lock()
				codes[resp.StatusCode]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if codes[http.StatusInternalServerError] != pollers*polls {
		t.Fatalf("answers with Redis dead: %v; want every one a 500", codes)
	}
	recs := a.logs.Take(t)
	var lines []string
	for _, r := range recs {
		lines = append(lines, fmt.Sprintf("%v %v", r["level"], r["msg"]))
	}
	t.Logf("%d polls of a failing /status: %d log lines: %q", pollers*polls, len(recs), lines)
	if len(recs) > 6 {
		t.Errorf("%d polls of a failing /status wrote %d log lines; want a handful", pollers*polls, len(recs))
	}
	want := map[string]bool{"health check not passing": false, "health: redis check failed": false, "request": false}
	for _, r := range recs {
		if _, ok := want[r["msg"].(string)]; ok {
			want[r["msg"].(string)] = true
		}
	}
	for msg, seen := range want {
		if !seen {
			t.Errorf("no %q line: the outage must still be logged once", msg)
		}
	}
}

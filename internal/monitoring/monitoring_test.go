package monitoring_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"
	"github.com/uptrace/bun"

	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/database"
	"github.com/prodready/service/internal/health"
	"github.com/prodready/service/internal/logging"
	"github.com/prodready/service/internal/monitoring"
	"github.com/prodready/service/internal/servicetest"
)

// testConfig points the agent at the fake collector, with cloud detection
// off: nothing may leave loopback.
func testConfig(c *servicetest.Collector) config.NewRelic {
	return config.NewRelic{
		Enabled: true, AppName: "notes-test", LicenseKey: servicetest.LicenseKey,
		Labels: []string{"team:notes", "tier:api"}, DistributedTracing: true, LogForwarding: true,
		CollectorHost: c.Host(), CollectorCAFile: c.CAFile(), UtilizationDetection: false,
	}
}

func startAgent(t *testing.T, cfg config.NewRelic, logger *slog.Logger) *monitoring.Agent {
	t.Helper()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a, err := monitoring.New(monitoring.Options{Config: cfg, ServiceName: "notes-api", Logger: logger, MetricsInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Shutdown(ctx)
	})
	return a
}

func connected(t *testing.T, a *monitoring.Agent) {
	t.Helper()
	if err := a.Application().WaitForConnection(10 * time.Second); err != nil {
		t.Fatalf("the agent did not connect to the fake collector: %v", err)
	}
}

// world is a small gin service instrumented as cmd/api instruments the real
// one: request ID first, then the agent's middleware, bun with the query
// hook, Redis with nrredis, the log handler.
type world struct {
	srv   *httptest.Server
	logs  *servicetest.LogBuffer
	agent *monitoring.Agent
}

func newWorld(t testing.TB, a *monitoring.Agent, db *bun.DB, rdb *redis.Client) *world {
	t.Helper()
	w := &world{logs: &servicetest.LogBuffer{}, agent: a}
	base, _, err := logging.New(w.logs, logging.Options{Level: "info", Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(a.LogHandler(base.Handler()))
	if db != nil {
		db = db.WithQueryHook(a.QueryHook(db))
		if _, err := db.ExecContext(context.Background(), "CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT)"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(context.Background(), "INSERT INTO things (id, name) VALUES (1, 'one')"); err != nil {
			t.Fatal(err)
		}
	}
	if rdb != nil {
		rdb.AddHook(a.RedisHook(rdb.Options()))
	}
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.Use(func(c *gin.Context) {
		c.Request = c.Request.WithContext(logging.WithRequestID(c.Request.Context(), c.GetHeader("X-Request-ID")))
		c.Next()
	})
	e.Use(a.Middleware("/livez")...)
	e.Use(func(c *gin.Context) { // the server's recovery, reduced to what the agent needs
		defer func() {
			if v := recover(); v != nil {
				a.NoticePanic(c.Request.Context(), v)
				c.AbortWithStatus(http.StatusInternalServerError)
			}
		}()
		c.Next()
	})
	e.GET("/livez", func(c *gin.Context) { c.String(200, "ok") })
	e.GET("/things/:id", func(c *gin.Context) {
		ctx := c.Request.Context()
		logger.InfoContext(ctx, "reading a thing", "id", c.Param("id"))
		if rdb != nil {
			_ = rdb.Get(ctx, "thing:"+c.Param("id")).Err()
		}
		if db != nil {
			var name string
			err := db.NewSelect().Table("things").Column("name").Where("id = ?", c.Param("id")).Scan(ctx, &name)
			if err != nil {
				c.String(404, "none")
				return
			}
		}
		c.String(200, "thing")
	})
	e.GET("/panic", func(*gin.Context) { panic("kaboom in a handler") })
	e.GET("/fail", func(c *gin.Context) {
		err := fmt.Errorf("store: the disk is on fire")
		a.NoticeError(c.Request.Context(), 500, err)
		c.String(500, "failed")
	})
	e.GET("/bad", func(c *gin.Context) { c.String(400, "bad input") })
	w.srv = httptest.NewServer(e)
	t.Cleanup(w.srv.Close)
	return w
}

func (w *world) get(t *testing.T, path string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", w.srv.URL+path, nil)
	req.Header.Set("X-Request-ID", "req-"+strings.Trim(strings.ReplaceAll(path, "/", "-"), "-"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func openSQLite(t testing.TB) *bun.DB {
	t.Helper()
	db, err := database.Open(context.Background(), database.Options{SQLitePath: filepath.Join(t.TempDir(), "t.db"), MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// shutdown flushes the agent: metrics and traces are harvested once a
// minute, or at shutdown.
func shutdown(t *testing.T, a *monitoring.Agent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a.Shutdown(ctx)
}

func TestAgent_ReportsTransactionsSegmentsErrorsAndLogs(t *testing.T) {
	col := servicetest.StartCollector(t)
	a := startAgent(t, testConfig(col), nil)
	connected(t, a)
	rdb := redis.NewClient(redisOptions(t))
	t.Cleanup(func() { rdb.Close() })
	w := newWorld(t, a, openSQLite(t), rdb)

	for _, tc := range []struct {
		path string
		want int
	}{{"/things/1", 200}, {"/things/2", 404}, {"/panic", 500}, {"/fail", 500}, {"/bad", 400}, {"/livez", 200}, {"/nowhere", 404}} {
		if got := w.get(t, tc.path); got != tc.want {
			t.Fatalf("GET %s = %d, want %d", tc.path, got, tc.want)
		}
	}

	// Transactions, by route template, with the request ID; probes skipped.
	col.WaitFor(t, "transaction events", 10*time.Second, func(c *servicetest.Collector) bool {
		return len(c.Events("analytic_event_data")) >= 6
	})
	names := map[string]int{}
	for _, e := range col.Events("analytic_event_data") {
		names[fmt.Sprint(e.Intrinsics["name"])]++
		if e.Intrinsics["name"] == "WebTransaction/Go/GET /things/:id" && !strings.HasPrefix(fmt.Sprint(e.User["request_id"]), "req-things") {
			t.Errorf("transaction without the request ID: user %v agent %v", e.User, e.Agent)
		}
	}
	want := map[string]int{"WebTransaction/Go/GET /things/:id": 2, "WebTransaction/Go/GET /panic": 1, "WebTransaction/Go/GET /fail": 1,
		"WebTransaction/Go/GET /bad": 1, "WebTransaction/Go/GET (unmatched route)": 1}
	for n, k := range want {
		if names[n] != k {
			t.Errorf("%d transactions named %q, want %d (all: %v)", names[n], n, k, names)
		}
	}
	if names["WebTransaction/Go/GET /livez"] != 0 {
		t.Error("the probe became a transaction")
	}

	// Datastore spans: SQLite with table, operation and the parameterised query; Redis.
	col.WaitFor(t, "datastore spans", 10*time.Second, func(c *servicetest.Collector) bool {
		return spanNamed(c, "Datastore/statement/SQLite/things/select") != nil && spanNamed(c, "Datastore/operation/Redis/get") != nil
	})
	sq := spanNamed(col, "Datastore/statement/SQLite/things/select")
	if sq.Intrinsics["component"] != "SQLite" || sq.Agent["db.collection"] != "things" ||
		sq.Agent["db.statement"] != `SELECT "name" FROM "things" WHERE (id = ?)` {
		t.Errorf("SQLite span (want the query without its values): %v %v", sq.Intrinsics, sq.Agent)
	}
	if rd := spanNamed(col, "Datastore/operation/Redis/get"); rd.Intrinsics["component"] != "Redis" || rd.Intrinsics["category"] != "datastore" {
		t.Errorf("Redis span: %v", rd.Intrinsics)
	}

	// Errors: the panic and the 500, not the 400 nor the 404s.
	col.WaitFor(t, "error events", 10*time.Second, func(c *servicetest.Collector) bool {
		return len(c.Events("error_event_data")) >= 2
	})
	errs := map[string]string{}
	for _, e := range col.Events("error_event_data") {
		errs[fmt.Sprint(e.Intrinsics["transactionName"])] = fmt.Sprintf("%v: %v", e.Intrinsics["error.class"], e.Intrinsics["error.message"])
	}
	if len(errs) != 2 || errs["WebTransaction/Go/GET /panic"] != "panic: kaboom in a handler" ||
		!strings.Contains(errs["WebTransaction/Go/GET /fail"], "the disk is on fire") {
		t.Errorf("errors noticed: %v; want the panic and the 500 only", errs)
	}

	// Logs in context: the forwarded record carries the trace and span of
	// its transaction, and so does the local JSON line.
	col.WaitFor(t, "forwarded logs", 10*time.Second, func(c *servicetest.Collector) bool { return len(c.Logs()) > 0 })
	var fwd map[string]any
	for _, l := range col.Logs() {
		if attrs, _ := l["attributes"].(map[string]any); l["message"] == "reading a thing" && attrs["request_id"] == "req-things-1" {
			fwd = l
		}
	}
	if fwd == nil || fwd["trace.id"] == nil || fwd["span.id"] == nil {
		t.Fatalf("forwarded log without trace and span: %v", col.Logs())
	}
	if !spanInTrace(col, fwd["trace.id"], fwd["span.id"]) {
		t.Errorf("the forwarded log's span %v is not a span of trace %v", fwd["span.id"], fwd["trace.id"])
	}
	local := localLine(t, w.logs, "reading a thing")
	if local["trace.id"] == nil || local["trace.id"] != fwd["trace.id"] || local["span.id"] != fwd["span.id"] {
		t.Errorf("local log line %v does not carry the forwarded trace %v / span %v", local, fwd["trace.id"], fwd["span.id"])
	}

	// Shutdown flushes: metrics and the panic's error trace with its stack.
	shutdown(t, a)
	m := col.Metrics()
	for _, name := range []string{"Datastore/statement/SQLite/things/select", "Datastore/operation/Redis/get",
		"WebTransaction/Go/GET /things/:id", "Errors/all", "Custom/HTTP/FailedRequests", "Logging/lines"} {
		if _, ok := m[name]; !ok {
			t.Errorf("metric %s not flushed at shutdown", name)
		}
	}
	var stack string
	for _, et := range col.ErrorTraces() {
		if et.Class == "panic" {
			stack = strings.Join(et.Stack, "\n")
		}
	}
	if !strings.Contains(stack, "monitoring_test") || !strings.Contains(stack, "gopanic") && !strings.Contains(stack, "panic") {
		t.Errorf("panic trace has no stack through the handler:\n%s", stack)
	}
}

// TestQueryHook_PostgreSQL: the same hook on PostgreSQL, where a failing
// query is noticed as an error and "no rows" is not.
func TestQueryHook_PostgreSQL(t *testing.T) {
	col := servicetest.StartCollector(t)
	a := startAgent(t, testConfig(col), nil)
	connected(t, a)
	db, err := database.Open(context.Background(), database.Options{URL: servicetest.PostgresURL(t), MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w := newWorld(t, a, db, nil)
	if w.get(t, "/things/1") != 200 || w.get(t, "/things/2") != 404 || w.get(t, "/things/x") != 404 {
		t.Fatal("unexpected answers")
	}
	col.WaitFor(t, "the Postgres span", 10*time.Second, func(c *servicetest.Collector) bool {
		return spanNamed(c, "Datastore/statement/Postgres/things/select") != nil && len(c.Events("error_event_data")) > 0
	})
	sp := spanNamed(col, "Datastore/statement/Postgres/things/select")
	if sp.Intrinsics["component"] != "Postgres" || sp.Agent["db.statement"] != `SELECT "name" FROM "things" WHERE (id = ?)` {
		t.Errorf("Postgres span: %v %v", sp.Intrinsics, sp.Agent)
	}
	// id = 'x' is an invalid integer in PostgreSQL: an error; id 2 only found no row.
	var noticed []string
	for _, e := range col.Events("error_event_data") {
		noticed = append(noticed, fmt.Sprint(e.Intrinsics["error.message"]))
	}
	if len(noticed) != 1 || !strings.Contains(noticed[0], "invalid input syntax") {
		t.Errorf("errors noticed %q, want the invalid query only", noticed)
	}
}

func TestAgent_ConnectCarriesNameLabelsAndSettings(t *testing.T) {
	col := servicetest.StartCollector(t)
	cfg := testConfig(col)
	cfg.AppName = ""
	connected(t, startAgent(t, cfg, nil))
	c := col.Connect()
	if names, _ := c["app_name"].([]any); len(names) != 1 || names[0] != "notes-api" {
		t.Errorf("app_name %v, want service.name when newrelic.app_name is empty", c["app_name"])
	}
	labels := map[string]any{}
	for _, l := range c["labels"].([]any) {
		l := l.(map[string]any)
		labels[fmt.Sprint(l["label_type"])] = l["label_value"]
	}
	if labels["team"] != "notes" || labels["tier"] != "api" {
		t.Errorf("labels %v", c["labels"])
	}
	for k, want := range map[string]any{"Utilization.DetectAWS": false, "Utilization.DetectGCP": false, "Utilization.DetectAzure": false,
		"Utilization.DetectKubernetes": false, "Utilization.DetectDocker": false, "Utilization.DetectPCF": false,
		"RuntimeSampler.Enabled": true, "DistributedTracer.Enabled": true} {
		if got := setting(c, k); got != want {
			t.Errorf("connect settings %s = %v, want %v", k, got, want)
		}
	}
	if u, _ := c["utilization"].(map[string]any); u["vendors"] != nil {
		t.Errorf("cloud vendors detected with detection off: %v", u["vendors"])
	}
	if lic := col.Calls("connect")[0].LicenseKey; lic != servicetest.LicenseKey {
		t.Errorf("license key sent %q", lic)
	}
}

func TestAgent_HighSecurityForwardsNoLogs(t *testing.T) {
	col := servicetest.StartCollector(t)
	cfg := testConfig(col)
	cfg.HighSecurity = true
	a := startAgent(t, cfg, nil)
	connected(t, a)
	if a.ForwardsLogs() {
		t.Error("log forwarding on under high security")
	}
	w := newWorld(t, a, nil, nil)
	w.get(t, "/things/1")
	col.WaitFor(t, "the transaction", 10*time.Second, func(c *servicetest.Collector) bool { return len(c.Events("analytic_event_data")) > 0 })
	shutdown(t, a)
	if logs := col.Logs(); len(logs) != 0 {
		t.Errorf("high security forwarded %d logs: %v", len(logs), logs)
	}
	if pre := col.Calls("preconnect")[0].Payload.([]any)[0].(map[string]any); pre["high_security"] != true {
		t.Errorf("preconnect high_security = %v", pre["high_security"])
	}
	// The local log still links to the trace.
	if l := localLine(t, w.logs, "reading a thing"); l["trace.id"] == nil {
		t.Errorf("local line without trace.id: %v", l)
	}
}

// TestCheck_FollowsTheConnection: the check an operator sees on /status
// for each state of the agent.
func TestCheck_FollowsTheConnection(t *testing.T) {
	run := func(a *monitoring.Agent) health.Result { return a.Check().Run(context.Background()) }

	t.Run("connected passes", func(t *testing.T) {
		col := servicetest.StartCollector(t)
		a := startAgent(t, testConfig(col), nil)
		connected(t, a)
		if r := run(a); r.Status != health.Pass {
			t.Errorf("connected: %+v", r)
		}
	})
	t.Run("a refused license fails", func(t *testing.T) {
		col := servicetest.StartCollector(t)
		col.Refuse(http.StatusUnauthorized)
		a := startAgent(t, testConfig(col), nil)
		col.WaitFor(t, "preconnect", 10*time.Second, func(c *servicetest.Collector) bool { return len(c.Calls("preconnect")) > 0 })
		waitStatus(t, a, health.Fail, "refused the agent (HTTP 401)")
	})
	t.Run("an unreachable collector warns", func(t *testing.T) {
		col := servicetest.StartCollector(t)
		cfg := testConfig(col)
		col.Close() // nothing listens there now
		waitStatus(t, startAgent(t, cfg, nil), health.Warn, "unreachable")
	})
	t.Run("a collector that stops taking data warns", func(t *testing.T) {
		col := servicetest.StartCollector(t)
		a := startAgent(t, testConfig(col), nil)
		connected(t, a)
		col.Fail(http.StatusServiceUnavailable)
		w := newWorld(t, a, nil, nil)
		w.get(t, "/things/1")
		waitStatus(t, a, health.Warn, "has not taken data since")
		col.Fail(0)
		w.get(t, "/things/1")
		waitStatus(t, a, health.Pass, "")
	})
}

func waitStatus(t *testing.T, a *monitoring.Agent, want health.Status, output string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var r health.Result
	for time.Now().Before(deadline) {
		if r = a.Check().Run(context.Background()); r.Status == want && strings.Contains(r.Output, output) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("check is %s %q, want %s containing %q", r.Status, r.Output, want, output)
}

func TestAgent_OffIsOneDecision(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  config.NewRelic
		why  string
	}{
		{"no license key", config.NewRelic{Enabled: true}, "no New Relic license key"},
		{"opted out", config.NewRelic{Enabled: false, LicenseKey: servicetest.LicenseKey}, "newrelic.enabled is false"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, err := monitoring.New(monitoring.Options{Config: tt.cfg})
			if err != nil {
				t.Fatal(err)
			}
			if a.On() || !strings.Contains(a.Off(), tt.why) || a.Middleware() != nil || a.RedisHook(&redis.Options{}) != nil {
				t.Errorf("off agent: on %v, off %q", a.On(), a.Off())
			}
			h := slog.DiscardHandler
			if a.LogHandler(h) != h {
				t.Error("an off agent wraps the log handler")
			}
			a.Gauge("Custom/X", func() float64 { return 1 })
			a.NoticeError(context.Background(), 500, nil)
			a.Shutdown(context.Background())
		})
	}
}

// TestNew_RejectsAnUnusableCAFile: a CA bundle that cannot be read, or
// holds no certificate, stops the start with the key's name, instead of an
// agent that can never connect.
func TestNew_RejectsAnUnusableCAFile(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, file, want string }{
		{"missing", filepath.Join(t.TempDir(), "missing.pem"), "newrelic.collector_ca_file: open "},
		{"no certificate in it", notPEM, "newrelic.collector_ca_file: no PEM certificate in " + notPEM},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.NewRelic{Enabled: true, LicenseKey: servicetest.LicenseKey, CollectorCAFile: tt.file}
			if _, err := monitoring.New(monitoring.Options{Config: cfg}); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func spanNamed(c *servicetest.Collector, name string) *servicetest.Event {
	for _, e := range c.Events("span_event_data") {
		if e.Intrinsics["name"] == name {
			return &e
		}
	}
	return nil
}

func spanInTrace(c *servicetest.Collector, traceID, spanID any) bool {
	for _, e := range c.Events("span_event_data") {
		if e.Intrinsics["traceId"] == traceID && e.Intrinsics["guid"] == spanID {
			return true
		}
	}
	return false
}

func localLine(t *testing.T, logs *servicetest.LogBuffer, msg string) map[string]any {
	t.Helper()
	for _, line := range strings.Split(logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
			return m
		}
	}
	t.Fatalf("no local log line %q in:\n%s", msg, logs.String())
	return nil
}

func redisOptions(t *testing.T) *redis.Options {
	t.Helper()
	opts, err := redis.ParseURL(servicetest.URL(t, "TEST_REDIS_URL", "Redis"))
	if err != nil {
		t.Fatal("TEST_REDIS_URL is not a Redis URL")
	}
	return opts
}

// setting reads a dotted path ("Utilization.DetectAWS") of the connect settings.
func setting(connect map[string]any, path string) any {
	v := connect["settings"]
	for _, k := range strings.Split(path, ".") {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

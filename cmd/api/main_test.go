package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prodready/service/internal/servicetest"
)

// TestMain lets a test re-run this test binary as the real program (main(),
// signals and exit codes included) by setting API_TEST_RUN_MAIN=1.
func TestMain(m *testing.M) {
	if os.Getenv("API_TEST_RUN_MAIN") == "1" {
		// os.Args[0] stays this binary: a master starts its workers from it.
		os.Args = append([]string{os.Args[0]}, strings.Fields(os.Getenv("API_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// app is the real program running in-process.
type app struct {
	url    string
	logs   *servicetest.LogBuffer
	stop   context.CancelFunc
	done   chan error
	client *http.Client
}

const testToken = "e2e-status-token-0123456789"

var listenRe = regexp.MustCompile(`"msg":"http server listening".*?"addr":"([^"]+)"`)

// devEnv is the environment the tests run the service in, with env on top:
// development on a random loopback port, debug logs, no drain delay, the
// test status token, and never a probe of cloud metadata addresses, whatever
// a test turns on.
func devEnv(env map[string]string) map[string]string {
	base := map[string]string{
		"APP_ENVIRONMENT":                    "development",
		"APP_HTTP_HOST":                      "127.0.0.1",
		"APP_HTTP_PORT":                      "0",
		"APP_LOG_LEVEL":                      "debug",
		"APP_HTTP_DRAIN_DELAY":               "0s",
		"STATUS_TOKENS":                      testToken,
		"APP_NEWRELIC_UTILIZATION_DETECTION": "false",
	}
	for k, v := range env {
		base[k] = v
	}
	return base
}

// startApp runs `api serve` through run() on a random loopback port with the
// given environment on top of development defaults and a temporary SQLite file.
func startApp(t testing.TB, env map[string]string) *app {
	t.Helper()
	base := devEnv(map[string]string{"APP_DATABASE_SQLITE_PATH": filepath.Join(t.TempDir(), "data", "notes.db")})
	for k, v := range env {
		base[k] = v
	}
	ctx, cancelRun := context.WithCancel(context.Background())
	// The test's client keeps no idle connection when the service stops: a
	// stopping service waits for a recently used one to go quiet
	// (drain.Drainer.Wait), which would only make the test slower.
	tr := &http.Transport{}
	cancel := func() { tr.CloseIdleConnections(); cancelRun() }
	a := &app{logs: &servicetest.LogBuffer{}, stop: cancel, done: make(chan error, 1), client: &http.Client{Timeout: 10 * time.Second, Transport: tr}}
	go func() {
		a.done <- run(ctx, []string{"serve"}, func(k string) string { return base[k] }, a.logs, a.logs)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := listenRe.FindStringSubmatch(a.logs.String()); m != nil {
			a.url = "http://" + m[1]
			break
		}
		select {
		case err := <-a.done:
			t.Fatalf("the service stopped at start: %v\nlogs:\n%s", err, a.logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if a.url == "" {
		cancel()
		t.Fatalf("the service did not start listening within 20s; logs:\n%s", a.logs.String())
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-a.done:
		case <-time.After(30 * time.Second):
			t.Error("the service did not stop within 30s")
		}
	})
	return a
}

// createNote creates a note titled title and returns its path; what names
// the step in the failure.
func (a *app) createNote(t *testing.T, title, what string) string {
	t.Helper()
	resp, n := a.do(t, "POST", "/v1/notes", fmt.Sprintf(`{"title":%q}`, title))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("%s: %d", what, resp.StatusCode)
	}
	return "/v1/notes/" + n["id"].(string)
}

// do sends a request and decodes a JSON response body into a map.
func (a *app) do(t *testing.T, method, path, body string, hdr ...string) (*http.Response, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.url+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := a.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s %s: body is not JSON: %q", method, path, raw)
		}
	}
	return resp, m
}

// notesScenario drives the notes API as a client would, checking each answer.
func notesScenario(t *testing.T, a *app) {
	resp, created := a.do(t, "POST", "/v1/notes", `{"title":"Buy milk","body":"2 litres"}`, "X-Request-ID", "e2e-create-1")
	if resp.StatusCode != http.StatusCreated || created["title"] != "Buy milk" || created["version"] != float64(1) {
		t.Fatalf("create: %d %v", resp.StatusCode, created)
	}
	if got := resp.Header.Get("X-Request-ID"); got != "e2e-create-1" {
		t.Errorf("create: request ID %q not echoed", got)
	}
	id := created["id"].(string)
	if loc := resp.Header.Get("Location"); loc != "/v1/notes/"+id {
		t.Errorf("create: Location %q", loc)
	}

	resp, got := a.do(t, "GET", "/v1/notes/"+id, "")
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != http.StatusOK || got["body"] != "2 litres" || etag != `"1"` {
		t.Fatalf("get: %d %v etag %q", resp.StatusCode, got, etag)
	}
	// A second read is served by the cache and must be identical.
	if _, again := a.do(t, "GET", "/v1/notes/"+id, ""); fmt.Sprint(again) != fmt.Sprint(got) {
		t.Errorf("cached read differs: %v vs %v", again, got)
	}

	resp, updated := a.do(t, "PUT", "/v1/notes/"+id, `{"title":"Buy oat milk","body":"2 litres"}`, "If-Match", etag)
	if resp.StatusCode != http.StatusOK || updated["version"] != float64(2) || resp.Header.Get("ETag") != `"2"` {
		t.Fatalf("update: %d %v", resp.StatusCode, updated)
	}
	// The cache was invalidated: a read sees the new title at once.
	if _, fresh := a.do(t, "GET", "/v1/notes/"+id, ""); fresh["title"] != "Buy oat milk" {
		t.Errorf("read after update is stale: %v", fresh)
	}
	// Someone still holding version 1 loses, and is told so.
	resp, prob := a.do(t, "PUT", "/v1/notes/"+id, `{"title":"lost update"}`, "If-Match", etag)
	if resp.StatusCode != http.StatusPreconditionFailed || !isProblem(resp) || prob["request_id"] == "" {
		t.Errorf("stale update: %d %v", resp.StatusCode, prob)
	}

	for i := range 4 {
		a.do(t, "POST", "/v1/notes", fmt.Sprintf(`{"title":"note %d"}`, i))
	}
	resp, page := a.do(t, "GET", "/v1/notes?limit=3", "")
	if resp.StatusCode != http.StatusOK || len(page["items"].([]any)) != 3 || page["next_cursor"] == "" {
		t.Fatalf("list: %d %v", resp.StatusCode, page)
	}
	_, rest := a.do(t, "GET", "/v1/notes?limit=3&cursor="+page["next_cursor"].(string), "")
	if n := len(rest["items"].([]any)); n != 2 || rest["next_cursor"] != nil {
		t.Errorf("second page: %d items, next %v", n, rest["next_cursor"])
	}
	resp, prob = a.do(t, "GET", "/v1/notes?limit=100000", "")
	if resp.StatusCode != http.StatusBadRequest || !isProblem(resp) {
		t.Errorf("over-limit page size: %d %v", resp.StatusCode, prob)
	}

	resp, _ = a.do(t, "DELETE", "/v1/notes/"+id, "", "If-Match", `"2"`)
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("delete: %d", resp.StatusCode)
	}
	resp, prob = a.do(t, "GET", "/v1/notes/"+id, "")
	if resp.StatusCode != http.StatusNotFound || !isProblem(resp) {
		t.Errorf("get after delete: %d %v", resp.StatusCode, prob)
	}
}

func isProblem(r *http.Response) bool {
	return strings.HasPrefix(r.Header.Get("Content-Type"), "application/problem+json")
}

func TestServe_NotesOnEmbeddedDefaults(t *testing.T) {
	a := startApp(t, nil)
	notesScenario(t, a)

	// The errors a client meets, each as problem+json with the request ID.
	errorsTable := []struct {
		name, method, path, body, ctype string
		want                            int
	}{
		{"unknown route", "GET", "/nope", "", "", 404},
		{"wrong method", "PATCH", "/v1/notes", "", "", 405},
		{"malformed JSON", "POST", "/v1/notes", `{"title":`, "application/json", 400},
		{"failed validation", "POST", "/v1/notes", `{"title":""}`, "application/json", 400},
		{"wrong content type", "POST", "/v1/notes", `title=x`, "application/x-www-form-urlencoded", 415},
		{"body too large", "POST", "/v1/notes", `{"title":"` + strings.Repeat("x", 2<<20) + `"}`, "application/json", 413},
	}
	for _, tt := range errorsTable {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, a.url+tt.path, strings.NewReader(tt.body))
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			resp, err := a.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var p map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&p)
			if resp.StatusCode != tt.want || !isProblem(resp) {
				t.Fatalf("status %d type %q, want %d problem+json", resp.StatusCode, resp.Header.Get("Content-Type"), tt.want)
			}
			if p["status"] != float64(tt.want) || p["request_id"] != resp.Header.Get("X-Request-ID") || p["title"] == "" {
				t.Errorf("problem body %v does not carry status, title and the request ID", p)
			}
		})
	}

	// What net/http refuses itself, before any handler: the same shape, and
	// never a 5xx (server.Refusals; every case in TestRefusals_*).
	for _, raw := range []string{"GET /livez HTTP/9.9\r\nHost: x\r\n\r\n", "GET /livez HTTP/1.1\r\n\r\n"} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(a.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(conn, raw)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		var p map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&p)
		conn.Close()
		id := resp.Header.Get("X-Request-ID")
		if resp.StatusCode != 400 || !isProblem(resp) || p["request_id"] != id ||
			!strings.Contains(a.logs.String(), `"request_id":"`+id+`"`) {
			t.Errorf("%q: %d %q %v, want a 400 problem whose request ID is in the log", raw, resp.StatusCode, resp.Header.Get("Content-Type"), p)
		}
	}

	resp, live := a.do(t, "GET", "/livez", "")
	if resp.StatusCode != 200 || live["status"] != "ok" {
		t.Errorf("livez: %d %v", resp.StatusCode, live)
	}
	if !strings.Contains(a.logs.String(), `"request_id":"e2e-create-1"`) {
		t.Error("no log record carries the request ID the client sent")
	}
}

func TestServe_PostgreSQLAndRedis(t *testing.T) {
	dbURL := servicetest.PostgresURL(t)
	redisURL := servicetest.URL(t, "TEST_REDIS_URL", "Redis")
	a := startApp(t, map[string]string{"DATABASE_URL": dbURL, "REDIS_URL": redisURL, "APP_CACHE_KEY_PREFIX": "e2e-" + t.Name() + ":"})
	if !strings.Contains(a.logs.String(), `"cache":"redis","database":"postgres"`) {
		t.Fatalf("not running on PostgreSQL and Redis:\n%s", a.logs.String())
	}
	notesScenario(t, a)
	resp, body := a.do(t, "GET", "/status", "", "Authorization", "Bearer "+testToken)
	checks, _ := body["checks"].(map[string]any)
	if resp.StatusCode != 200 || body["status"] != "pass" || len(checks) != 7 {
		t.Errorf("status with PostgreSQL and Redis up: %d %v", resp.StatusCode, body)
	}
	for _, name := range []string{"database:responseTime", "database:migrations", "cache:responseTime", "notes:cache", "notes:store", "http:shedding", "runtime:gomaxprocs"} {
		if _, ok := checks[name]; !ok {
			t.Errorf("no %s check", name)
		}
	}
	if strings.Contains(a.logs.String(), strings.TrimPrefix(dbURL, "postgres://")) || strings.Contains(a.logs.String(), testToken) {
		t.Error("the database URL or the status token appears in the logs")
	}
}

// TestServe_SIGHUPReloadsTheLogLevel edits the config file, sends SIGHUP and
// sees debug records appear without a restart.
//
// It signals the test process itself: it must stay sequential (no
// t.Parallel), so no other in-process app is running when it does.
func TestServe_SIGHUPReloadsTheLogLevel(t *testing.T) {
	file := filepath.Join(t.TempDir(), "config.yaml")
	write := func(level string) {
		if err := os.WriteFile(file, []byte("environment: development\nlog:\n  level: "+level+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("info")
	a := startApp(t, map[string]string{"APP_CONFIG": file, "APP_LOG_LEVEL": ""})
	a.do(t, "GET", "/v1/notes", "")
	if strings.Contains(a.logs.String(), `"msg":"request started"`) {
		t.Fatal("debug record at level info")
	}
	write("debug")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, a.logs, `"msg":"log level changed"`)
	a.do(t, "GET", "/v1/notes", "")
	waitFor(t, a.logs, `"msg":"request started"`)

	write("loud") // an invalid file leaves the level alone, with a warning
	_ = syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitFor(t, a.logs, "SIGHUP: configuration invalid; log level unchanged")
}

// TestServe_StatusReadinessAndHealthcheck drives the probes and the
// healthcheck command against the running program.
func TestServe_StatusReadinessAndHealthcheck(t *testing.T) {
	a := startApp(t, map[string]string{"APP_HTTP_DRAIN_DELAY": "3s"})
	resp, body := a.do(t, "GET", "/status", "", "Authorization", "Bearer "+testToken)
	if resp.StatusCode != 200 || body["status"] != "pass" || body["serviceId"] != "notes-api" ||
		body["version"] != version || body["releaseId"] != revision() ||
		resp.Header.Get("Content-Type") != "application/health+json" {
		t.Fatalf("status: %d %v", resp.StatusCode, body)
	}
	if _, ok := body["checks"].(map[string]any)["disk:free"]; !ok {
		t.Errorf("SQLite in use but no disk:free check: %v", body["checks"])
	}
	if resp, _ := a.do(t, "GET", "/status", ""); resp.StatusCode != 401 {
		t.Errorf("status without a token: %d", resp.StatusCode)
	}
	if resp, _ := a.do(t, "GET", "/readyz", ""); resp.StatusCode != 200 {
		t.Errorf("readyz: %d", resp.StatusCode)
	}

	port := a.url[strings.LastIndex(a.url, ":")+1:]
	hcEnv := map[string]string{"APP_ENVIRONMENT": "development", "APP_HTTP_PORT": port, "STATUS_TOKENS": testToken}
	hc := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"healthcheck"}, args...), func(k string) string { return hcEnv[k] }, &out, io.Discard)
		return out.String(), err
	}
	if out, err := hc(); err != nil || !strings.Contains(out, "answered 200 pass") {
		t.Errorf("healthcheck: %q %v", out, err)
	}
	if out, err := hc("--url", a.url+"/readyz"); err != nil || !strings.Contains(out, "answered 200 ready") {
		t.Errorf("healthcheck /readyz: %q %v", out, err)
	}
	hcEnv["STATUS_TOKENS"] = "wrong-token-0123456789"
	if _, err := hc(); err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "answered 401 fail") {
		t.Errorf("healthcheck with a wrong token: %v", err)
	}
	if _, err := hc("--url", "http://127.0.0.1:1/status"); err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("healthcheck of a closed port: %v", err)
	}
	if _, err := hc("extra"); err == nil || !strings.Contains(err.Error(), `unexpected argument "extra"`) {
		t.Errorf("healthcheck with a stray argument: %v", err)
	}
	hcEnv["APP_ENVIRONMENT"] = "production"
	if _, err := hc(); err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "invalid configuration") {
		t.Errorf("healthcheck with a bad configuration: %v", err)
	}

	// SIGTERM: readiness fails at once while requests are still served.
	a.stop()
	waitFor(t, a.logs, "draining: /readyz answers 503")
	if resp, body := a.do(t, "GET", "/readyz", ""); resp.StatusCode != 503 || body["status"] != "draining" {
		t.Errorf("readyz while draining: %d %v", resp.StatusCode, body)
	}
	if resp, _ := a.do(t, "GET", "/livez", ""); resp.StatusCode != 200 {
		t.Errorf("livez while draining: %d", resp.StatusCode)
	}
}

// TestServe_DiskCheckWatchesTheSQLiteURLFile: with database.url naming a
// SQLite file, the disk check watches that file's directory, not the unused
// database.sqlite_path (whose directory does not even exist here).
func TestServe_DiskCheckWatchesTheSQLiteURLFile(t *testing.T) {
	a := startApp(t, map[string]string{
		"APP_DATABASE_URL":         "sqlite://" + filepath.Join(t.TempDir(), "elsewhere", "notes.db"),
		"APP_DATABASE_SQLITE_PATH": filepath.Join(t.TempDir(), "never-created", "notes.db"),
	})
	resp, body := a.do(t, "GET", "/status", "", "Authorization", "Bearer "+testToken)
	disk, _ := body["checks"].(map[string]any)["disk:free"].([]any)
	if resp.StatusCode != 200 || body["status"] != "pass" || len(disk) != 1 {
		t.Fatalf("status with a sqlite: database url: %d %v", resp.StatusCode, body)
	}
}

// TestServe_GracefulShutdownFinishesInFlightRequests cancels the context
// (what SIGTERM does) while a client is still uploading its request body; the
// request must complete, and run must return cleanly.
func TestServe_GracefulShutdownFinishesInFlightRequests(t *testing.T) {
	a := startApp(t, map[string]string{"APP_HTTP_SHUTDOWN_TIMEOUT": "10s"})
	// A raw connection, so we know exactly what is on the wire: the headers
	// and half the body now, the rest after shutdown has begun.
	conn, err := net.Dial("tcp", strings.TrimPrefix(a.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"title":"written during shutdown","body":"ok"}`
	head := fmt.Sprintf("POST /v1/notes HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	if _, err := io.WriteString(conn, head+body[:20]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, a.logs, `"msg":"request started"`) // the handler is now reading the body
	a.stop()                                      // what SIGTERM does
	waitFor(t, a.logs, "shutting down: draining in-flight requests")
	if _, err := io.WriteString(conn, body[20:]); err != nil {
		t.Fatalf("the server dropped the in-flight connection: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response to the in-flight request: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("in-flight request: status %d, want 201", resp.StatusCode)
	}
	select {
	case err := <-a.done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after shutdown")
	}
	a.done <- nil // for the cleanup
	if !strings.Contains(a.logs.String(), "stopped cleanly") {
		t.Error("no clean-stop log line")
	}
}

func waitFor(t *testing.T, logs *servicetest.LogBuffer, s string) {
	t.Helper()
	for range 500 {
		if strings.Contains(logs.String(), s) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("log line %q never appeared:\n%s", s, logs.String())
}

// TestMain_SIGTERM runs the real binary (this test binary re-executed as
// main) and sends it SIGTERM: it must log the drain and exit 0.
func TestMain_SIGTERM(t *testing.T) {
	t.Parallel() // the program runs as its own process
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "API_TEST_RUN_MAIN=1", "API_TEST_ARGS=serve",
		"APP_ENVIRONMENT=development", "APP_HTTP_HOST=127.0.0.1", "APP_HTTP_PORT=0",
		"APP_DATABASE_SQLITE_PATH="+filepath.Join(t.TempDir(), "notes.db"))
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killer := time.AfterFunc(60*time.Second, func() { _ = cmd.Process.Kill() }) // never hang the suite
	defer killer.Stop()
	sc := bufio.NewScanner(stdout)
	var addr string
	for sc.Scan() {
		if m := listenRe.FindStringSubmatch(sc.Text()); m != nil {
			addr = m[1]
			break
		}
	}
	if addr == "" {
		_ = cmd.Process.Kill()
		t.Fatalf("no listening line; stderr: %s", stderr.String())
	}
	if resp, err := http.Get("http://" + addr + "/livez"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("livez before SIGTERM: %v", err)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	var rest strings.Builder
	for sc.Scan() {
		rest.WriteString(sc.Text() + "\n")
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v; stderr: %s", err, stderr.String())
	}
	for _, want := range []string{"shutting down", "stopped cleanly"} {
		if !strings.Contains(rest.String(), want) {
			t.Errorf("missing %q after SIGTERM:\n%s", want, rest.String())
		}
	}
}

// TestMain_ExitCodes runs the real binary for the failures an operator meets.
func TestMain_ExitCodes(t *testing.T) {
	t.Parallel() // the program runs as its own process
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("log:\n  level: verbose\nhttp:\n  read_timeout: soon\n  prot: 1\n"), 0o600)
	tests := []struct {
		name     string
		args     string
		env      []string
		wantCode int
		wantOut  []string
	}{
		{"three config mistakes", "config --config " + bad, []string{"APP_ENVIRONMENT=development"}, 2, []string{
			"api: invalid configuration: 3 problems", "KEY", "log.level",
			"log.level (" + bad + ":2)", "http.read_timeout (" + bad + ":4)", "http.prot (" + bad + ":5): unknown key"}},
		{"three mistakes and what production lacks, at once", "serve --config " + bad, []string{"APP_ENVIRONMENT="}, 2, []string{
			"api: invalid configuration: 6 problems", "log.level (" + bad + ":2)", "http.read_timeout (" + bad + ":4)", "http.prot (" + bad + ":5): unknown key",
			"database.url (default): production needs a PostgreSQL database", "status.tokens (default): production needs a status token",
			"newrelic.license_key (default): production needs application monitoring"}},
		{"production without a database", "serve", []string{"APP_ENVIRONMENT=production"}, 2, []string{"production needs a PostgreSQL database"}},
		{"config shows the defaults, then what production lacks", "config", []string{"APP_ENVIRONMENT=", "DATABASE_URL=postgres://u:topsecret@db/x"}, 2, []string{
			"environment                     production", "[redacted]", "status.tokens (default): production needs a status token",
			"newrelic.license_key (default): production needs application monitoring"}},
		{"a port in http.host, before anything is opened", "serve", []string{"APP_ENVIRONMENT=development", "APP_HTTP_HOST=127.0.0.1:99"}, 2, []string{
			`http.host (env APP_HTTP_HOST): "127.0.0.1:99" holds a port`}},
		{"config reports http.host and a control character", "config", []string{"APP_ENVIRONMENT=development", "APP_HTTP_HOST=127.0.0.1:99", "APP_SERVICE_NAME=notes\x07"}, 2, []string{
			"http.host (env APP_HTTP_HOST)", "service.name (env APP_SERVICE_NAME): contains the control character U+0007"}},
		{"unknown command", "frobnicate", nil, 2, []string{`api: unknown command "frobnicate"`}},
		{"unknown flag", "serve --verbose", nil, 2, []string{"api: serve: flag provided but not defined: -verbose"}},
		{"--workers out of range", "serve --workers -3", []string{"APP_ENVIRONMENT=development"}, 2, []string{"api: serve: --workers -3: want 0 to 128"}},
		{"--workers -1 is out of range too", "serve --workers -1", []string{"APP_ENVIRONMENT=development"}, 2, []string{"api: serve: --workers -1: want 0 to 128"}},
		{"--workers not a number", "serve --workers two", []string{"APP_ENVIRONMENT=development"}, 2, []string{`api: serve: invalid value "two" for flag -workers: "two" is not a whole number`}},
		{"unreachable database", "serve", []string{"APP_ENVIRONMENT=production", "STATUS_TOKENS=0123456789abcdef0123", "APP_NEWRELIC_ENABLED=false", "DATABASE_URL=postgres://u:topsecret@127.0.0.1:1/x?connect_timeout=2"}, 1, []string{"api: open database"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), append(tt.env, "API_TEST_RUN_MAIN=1", "API_TEST_ARGS="+tt.args,
				"APP_DATABASE_SQLITE_PATH="+filepath.Join(dir, "x.db"))...)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tt.wantCode {
				t.Fatalf("exit %v, want code %d; output:\n%s", err, tt.wantCode, out)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(string(out), "topsecret") {
				t.Errorf("a secret leaked:\n%s", out)
			}
		})
	}
}

func TestRun_Commands(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{
		"APP_ENVIRONMENT": "development", "APP_DATABASE_SQLITE_PATH": filepath.Join(dir, "notes.db"),
		"APP_LOG_LEVEL": "debug", "REDIS_URL": "redis://:hunter2@127.0.0.1:6379/0",
	}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"config shows sources and redacts", []string{"config", "--config", "../../config.yaml"}, []string{
			"log.level", "debug", "env APP_LOG_LEVEL", "http.port", "8080", "../../config.yaml:", "[redacted]", "env REDIS_URL"}},
		{"version", []string{"version"}, []string{"api dev (commit"}},
		{"help", []string{"help"}, []string{"usage: api", "migrate up|down|status"}},
		{"migrate status before", []string{"migrate", "status"}, []string{"create_notes", "pending"}},
		{"migrate up", []string{"migrate", "up"}, []string{"migrate up: applied"}},
		{"migrate up again", []string{"migrate", "up"}, []string{"nothing to apply"}},
		{"migrate status after", []string{"migrate", "status"}, []string{"applied"}},
		{"migrate down", []string{"migrate", "down"}, []string{"migrate down: rolled back"}},
		{"migrate down again", []string{"migrate", "down"}, []string{"nothing to roll back"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := run(context.Background(), tt.args, getenv, &out, io.Discard); err != nil {
				t.Fatalf("run %v: %v", tt.args, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if strings.Contains(out.String(), "hunter2") {
				t.Errorf("secret printed:\n%s", out.String())
			}
		})
	}
	usage := [][]string{{"migrate"}, {"migrate", "sideways"}, {"version", "x"}, {"config", "extra"}, {"migrate", "up", "--nope"}, {"email-test", "--nope"}}
	for _, args := range usage {
		if err := run(context.Background(), args, getenv, io.Discard, io.Discard); exitCode(err) != exitUsage {
			t.Errorf("run %v: err %v, want a usage error", args, err)
		}
	}
	// -h, -help, --help, on any command: the usage on stdout, success.
	for _, args := range [][]string{{"--help"}, {"-h"}, {"serve", "--help"}, {"migrate", "--help"}, {"migrate", "status", "--help"},
		{"config", "-help"}, {"email-test", "--help"}, {"healthcheck", "--help"}, {"version", "--help"}, {"help"}} {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), args, getenv, &stdout, &stderr); err != nil ||
			!strings.HasPrefix(stdout.String(), "usage: api") || stderr.Len() > 0 {
			t.Errorf("%v: %v, stdout %q, stderr %q; want the usage on stdout and success", args, err, stdout.String(), stderr.String())
		}
	}
	// A database that does not answer is a run-time failure (exit 1), named.
	env["DATABASE_URL"] = "postgres://u:hunter2@127.0.0.1:1/x?connect_timeout=2"
	if err := run(context.Background(), []string{"migrate", "up"}, getenv, io.Discard, io.Discard); exitCode(err) != exitFailure ||
		!strings.Contains(err.Error(), "open database") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("migrate up with the database down: %v, want exit 1 naming the database, without the password", err)
	}
}

// TestMigrateStatus_ALockedTableEndsAtTheStatementTimeout: migrate status
// only reads, so database.statement_timeout bounds it: with another session
// holding a lock on bun_migrations it fails, saying why, instead of waiting
// as long as the lock is held (migrate up and down wait on purpose: a
// migration may rightly run longer than any request).
func TestMigrateStatus_ALockedTableEndsAtTheStatementTimeout(t *testing.T) {
	dbURL := servicetest.PostgresURL(t)
	env := map[string]string{"APP_ENVIRONMENT": "development", "DATABASE_URL": dbURL, "APP_DATABASE_STATEMENT_TIMEOUT": "300ms"}
	getenv := func(k string) string { return env[k] }
	if err := run(t.Context(), []string{"migrate", "up"}, getenv, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	servicetest.HoldInSession(t, dbURL, "LOCK TABLE bun_migrations IN ACCESS EXCLUSIVE MODE")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	err := run(ctx, []string{"migrate", "status"}, getenv, io.Discard, io.Discard)
	if err == nil || ctx.Err() != nil || exitCode(err) != exitFailure || !strings.Contains(err.Error(), "statement timeout") {
		t.Errorf("migrate status with bun_migrations locked: %v (context %v), want a run-time failure naming the statement timeout", err, ctx.Err())
	}
}

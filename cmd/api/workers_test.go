package main

import (
	"bufio"
	"context"
	"database/sql"
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
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prodready/service/internal/listener"
	"github.com/prodready/service/internal/loadgen"
	"github.com/prodready/service/internal/servicetest"
)

// The tests here run the real program as processes (this test binary
// re-executed as main, see TestMain), as an operator runs it, and drive a
// small load through what they do to it: a handful of keep-alive clients,
// each sending its next request as soon as it has its answer. None is
// timed; each counts the requests that failed.

// proc is the program running as a process.
type proc struct {
	cmd  *exec.Cmd
	logs *servicetest.LogBuffer
	addr string // from its "http server listening" record
	done chan error
}

// procEnv is the environment of a test process: development defaults on
// loopback, a SQLite file in dir, no drain delay, monitoring off.
func procEnv(dir string, extra ...string) []string {
	return append([]string{
		"API_TEST_RUN_MAIN=1",
		"APP_ENVIRONMENT=development", "APP_HTTP_HOST=127.0.0.1", "APP_HTTP_PORT=0",
		"APP_DATABASE_SQLITE_PATH=" + filepath.Join(dir, "notes.db"),
		"APP_HTTP_DRAIN_DELAY=0s", "APP_NEWRELIC_ENABLED=false", "APP_NEWRELIC_UTILIZATION_DETECTION=false",
		"STATUS_TOKENS=" + testToken,
	}, extra...)
}

// startProc starts `api <args>` with env (on top of nothing: the process
// sees only env, plus PATH), through wrap when given (a command prefix such
// as systemd-socket-activate), and waits until it listens.
func startProc(t *testing.T, args string, env []string, files []*os.File, wrap ...string) *proc {
	t.Helper()
	argv := append(append([]string{}, wrap...), os.Args[0])
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(env, "PATH="+os.Getenv("PATH"), "API_TEST_ARGS="+args)
	if dir := os.Getenv("GOCOVERDIR"); dir != "" {
		// go test -cover gives the test binary this folder; a child that
		// writes its counters there is counted in the coverage profile too
		// (the master's code runs only in such processes).
		cmd.Env = append(cmd.Env, "GOCOVERDIR="+dir)
	}
	cmd.ExtraFiles = files
	p := &proc{cmd: cmd, logs: &servicetest.LogBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if t.Failed() { // what the process saw, to match with the failure
			t.Logf("logs of %s (pid %d):\n%s", strings.Join(cmd.Args, " "), cmd.Process.Pid, p.logs.String())
		}
		select {
		case <-p.done:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("process %d did not stop within 30s after SIGTERM", cmd.Process.Pid)
		}
	})
	return p
}

// listening waits for the "http server listening" record and returns the
// address in it.
func (p *proc) listening(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if m := listenRe.FindStringSubmatch(p.logs.String()); m != nil {
			p.addr = m[1]
			return p.addr
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("the process stopped at start: %v\n%s", err, p.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("no listening record within 60s:\n%s", p.logs.String())
	return ""
}

// waitLog waits until the process has logged the message msg n times.
func (p *proc) waitLog(t *testing.T, msg string, n int) {
	t.Helper()
	needle := `"msg":"` + msg + `"`
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Count(p.logs.String(), needle) >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%q logged fewer than %d times within 60s:\n%s", msg, n, p.logs.String())
}

// stop sends sig and waits for the exit status.
func (p *proc) stop(t *testing.T, sig os.Signal) error {
	t.Helper()
	_ = p.cmd.Process.Signal(sig)
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		return err
	case <-time.After(60 * time.Second):
		t.Fatalf("process did not exit within 60s of %v:\n%s", sig, p.logs.String())
		return nil
	}
}

// records decodes the JSON log records of the process.
func (p *proc) records(t *testing.T) []map[string]any {
	t.Helper()
	var recs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.logs.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "{") {
			continue // main's one-line error on stderr
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		recs = append(recs, m)
	}
	return recs
}

var workerPidRe = regexp.MustCompile(`"msg":"worker ready".*?"worker_id":(\d+),"pid":(\d+)`)

// readyWorkers returns the pids of the workers that said they were ready,
// in order.
func (p *proc) readyWorkers() []int {
	var pids []int
	for _, m := range workerPidRe.FindAllStringSubmatch(p.logs.String(), -1) {
		pid, _ := strconv.Atoi(m[2])
		pids = append(pids, pid)
	}
	return pids
}

// bgLoad is loadgen running in the background until stopped.
type bgLoad struct {
	cancel context.CancelFunc
	res    chan loadgen.Result
}

// startLoad sends GET path from clients keep-alive connections to addr.
func startLoad(addr, path string, clients int, stopOnClose bool) *bgLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &bgLoad{cancel: cancel, res: make(chan loadgen.Result, 1)}
	go func() {
		l.res <- loadgen.Run(ctx, loadgen.Options{Addr: addr, Clients: clients, Request: loadgen.Get(path),
			Timeout: 30 * time.Second, StopOnClose: stopOnClose})
	}()
	return l
}

func (l *bgLoad) stop() loadgen.Result { l.cancel(); return <-l.res }

// settle lets the load run a little longer: twenty requests of the test
// itself, each answered. It leaves no idle connection behind: a stopping
// process waits for a recently used one to go quiet (drain.Drainer.Wait),
// which would only make the test slower.
func settle(t *testing.T, addr string) {
	t.Helper()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	for range 20 {
		resp, err := c.Get("http://" + addr + "/livez")
		if err != nil {
			t.Fatalf("livez: %v", err)
		}
		_ = resp.Body.Close()
	}
}

// createNote makes one note and returns its path, for a load that reads it.
func createNote(t *testing.T, addr string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Post("http://"+addr+"/v1/notes", "application/json", strings.NewReader(`{"title":"under load","body":"read again and again"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var n struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&n); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create a note: %d %v", resp.StatusCode, err)
	}
	return "/v1/notes/" + n.ID
}

func report(t *testing.T, what string, r loadgen.Result) {
	t.Logf("%s: sent %d, answered %d %v, cut %d, refused at dial %d, told to close %d; errors %v",
		what, r.Sent, r.Answered, r.Status, r.Cut, r.DialFails, r.Closed, r.Errors)
}

// TestWorkers_MasterAndWorkersReloadOnHUPLosingNothing runs `api serve
// --workers 2`, sends SIGHUP under load, and checks: two workers with
// GOMAXPROCS 1 each, two new ones start and the old two retire, every log
// record says which process wrote it, and no request fails.
func TestWorkers_MasterAndWorkersReloadOnHUPLosingNothing(t *testing.T) {
	master := startProc(t, "serve --workers 2", procEnv(t.TempDir(), "GOMAXPROCS=2"), nil)
	addr := master.listening(t)
	master.waitLog(t, "worker ready", 2)
	old := master.readyWorkers()

	// /status of whichever worker answers: its share of the CPUs.
	a := &app{url: "http://" + addr, client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	_, body := a.do(t, "GET", "/status", "", "Authorization", "Bearer "+testToken)
	gm := body["checks"].(map[string]any)["runtime:gomaxprocs"].([]any)[0].(map[string]any)
	if gm["observedValue"] != float64(1) || !strings.Contains(gm["output"].(string), "from the master") {
		t.Errorf("runtime:gomaxprocs of a worker = %v, want 1, set by the master (2 CPUs / 2 workers)", gm)
	}

	l := startLoad(addr, createNote(t, addr), 4, false)
	settle(t, addr)
	if err := master.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	master.waitLog(t, "reload complete: new workers serve, old ones finish their requests", 1)
	master.waitLog(t, "worker retired", 2)
	settle(t, addr)
	r := l.stop()
	report(t, "load through the reload", r)
	if r.Failed() != 0 || r.OK() == 0 {
		t.Errorf("%d of %d requests failed through a HUP reload, want 0", r.Failed(), r.Sent)
	}
	if r.Closed == 0 {
		t.Error("no answer said Connection: close: the retiring workers did not tell their clients")
	}
	now := master.readyWorkers()
	if len(now) != 4 || now[2] == old[0] || now[2] == old[1] {
		t.Errorf("ready workers %v: want two new ones after %v", now, old)
	}

	if err := master.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("master exit after SIGTERM: %v\n%s", err, master.logs.String())
	}
	master.waitLog(t, "master stopped cleanly", 1)
	for _, rec := range master.records(t) {
		if w, _ := rec["worker"].(string); w == "" {
			t.Errorf("a log record says no worker: %v", rec)
			break
		}
	}
}

// TestWorkers_KilledWorkerIsRestarted kills a worker with SIGKILL under
// load: the master logs it and starts another, and the other worker keeps
// answering. The only requests that can fail are the ones in flight on the
// killed worker's connections: a process killed at once answers nothing,
// and no supervisor can finish a request for it. Connections waiting in the
// socket's queue are not lost: the socket is shared, the other worker
// takes them.
func TestWorkers_KilledWorkerIsRestarted(t *testing.T) {
	const clients = 4
	master := startProc(t, "serve --workers 2", procEnv(t.TempDir()), nil)
	addr := master.listening(t)
	master.waitLog(t, "worker ready", 2)
	victim := master.readyWorkers()[0]

	l := startLoad(addr, createNote(t, addr), clients, false)
	settle(t, addr)
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	settle(t, addr) // the other worker answers meanwhile
	master.waitLog(t, "worker exited unexpectedly", 1)
	master.waitLog(t, "restarting worker after backoff", 1)
	master.waitLog(t, "worker ready", 3)
	r := l.stop()
	report(t, "load through the kill", r)
	if r.Cut > clients || r.Failed() != r.Cut || r.OK() == 0 {
		t.Errorf("failed %d (cut %d): want only requests cut on the killed worker's connections (at most %d)", r.Failed(), r.Cut, clients)
	}
	// After the restart, every request is answered again.
	after := startLoad(addr, "/livez", clients, false)
	settle(t, addr)
	if r := after.stop(); r.Failed() != 0 {
		t.Errorf("after the restart %d requests failed", r.Failed())
	}
	if !strings.Contains(master.logs.String(), `"status":"killed by SIGKILL"`) {
		t.Errorf("the master did not log how the worker died:\n%s", master.logs.String())
	}
	noStaleReads(t, addr, createNote(t, addr))
}

// noStaleReads reads a note through every worker (a new connection each
// time), changes it through one, and reads it again: every worker must see
// the change. Without Redis the workers cache nothing, since a memory cache
// per worker would keep the old version until its TTL.
func noStaleReads(t *testing.T, addr, path string) {
	t.Helper()
	a := &app{url: "http://" + addr, client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	for range 10 {
		a.do(t, "GET", path, "")
	}
	if resp, _ := a.do(t, "PUT", path, `{"title":"changed","body":"through one worker"}`, "If-Match", `"1"`); resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	for i := range 10 {
		if _, n := a.do(t, "GET", path, ""); n["version"] != float64(2) {
			t.Fatalf("read %d after the change saw version %v, want 2: a worker served a stale note", i, n["version"])
		}
	}
}

// TestServe_SocketActivationRestartLosesNothing starts the service with the
// socket from systemd-socket-activate (LISTEN_FDS), then restarts it the way
// systemd does with deploy/systemd/api.socket: the socket stays open (here
// the test holds it, as systemd would), the old process stops, the new one
// takes the socket; connections arriving meanwhile wait in its queue.
func TestServe_SocketActivationRestartLosesNothing(t *testing.T) {
	dir := t.TempDir()
	if _, err := exec.LookPath("systemd-socket-activate"); err != nil {
		servicetest.Missing(t, "systemd-socket-activate", "not installed (Debian package systemd)")
	}
	// The real tool: it binds, passes the socket as fd 3 and sets
	// LISTEN_FDS and LISTEN_PID. It launches the service on the first connection.
	port := servicetest.FreePort(t)
	wrap := []string{"systemd-socket-activate", "-l", "127.0.0.1:" + strconv.Itoa(port)}
	for _, kv := range procEnv(dir, "API_TEST_ARGS=serve", "PATH="+os.Getenv("PATH")) {
		wrap = append(wrap, "-E", kv)
	}
	activated := startProc(t, "serve", nil, nil, wrap...)
	waitDial(t, "127.0.0.1:"+strconv.Itoa(port))
	if got := activated.listening(t); got != "127.0.0.1:"+strconv.Itoa(port) {
		t.Fatalf("listening on %s, want the activated socket", got)
	}
	if !strings.Contains(activated.logs.String(), `"socket":"systemd"`) {
		t.Fatalf("the service did not take systemd's socket:\n%s", activated.logs.String())
	}
	if err := activated.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}

	// The restart: the socket outlives the processes.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := listener.File(ln)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// LISTEN_PID must be the service's own pid: exec keeps the shell's.
	activate := []string{"/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"`, "sh"}
	first := startProc(t, "serve", procEnv(dir), []*os.File{f}, activate...)
	addr := first.listening(t)
	l := startLoad(addr, createNote(t, addr), 4, false)
	settle(t, addr)
	if err := first.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	second := startProc(t, "serve", procEnv(dir), []*os.File{f}, activate...)
	second.listening(t)
	settle(t, addr)
	r := l.stop()
	report(t, "load through a socket-activated restart", r)
	if r.Failed() != 0 || r.OK() == 0 {
		t.Errorf("%d of %d requests failed through the restart, want 0", r.Failed(), r.Sent)
	}
}

// waitDial connects once to addr, which makes systemd-socket-activate
// start the service.
func waitDial(t *testing.T, addr string) {
	t.Helper()
	for range 200 {
		if c, err := net.Dial("tcp", addr); err == nil {
			_ = c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s", addr)
}

// TestServe_ReusePortRestartLosesNothing replaces a process by another on
// the same port under load: with http.reuse_port the new one binds while the
// old one still serves, then the old one stops.
func TestServe_ReusePortRestartLosesNothing(t *testing.T) {
	if !listener.QueuedConnectionsMigrate() {
		servicetest.Missing(t, "net.ipv4.tcp_migrate_req", "is 0: run sysctl -w net.ipv4.tcp_migrate_req=1 (.ci/run does)")
	}
	dir := t.TempDir()
	env := procEnv(dir, "APP_HTTP_REUSE_PORT=true", "APP_HTTP_PORT="+strconv.Itoa(servicetest.FreePort(t)))
	old := startProc(t, "serve", env, nil)
	addr := old.listening(t)
	if !strings.Contains(old.logs.String(), `"socket":"reuseport"`) {
		t.Fatalf("not bound with SO_REUSEPORT:\n%s", old.logs.String())
	}
	l := startLoad(addr, createNote(t, addr), 4, false)
	settle(t, addr)
	replacement := startProc(t, "serve", env, nil)
	if got := replacement.listening(t); got != addr {
		t.Fatalf("the replacement listens on %s, want %s", got, addr)
	}
	if err := old.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	settle(t, addr)
	r := l.stop()
	report(t, "load through a reuse-port restart", r)
	if r.Failed() != 0 || r.OK() == 0 {
		t.Errorf("%d of %d requests failed through the restart, want 0", r.Failed(), r.Sent)
	}
}

// TestMain_SIGTERMCutsNoKeepAliveRequest stops the service with SIGTERM
// while keep-alive clients send: during the drain every answer says
// Connection: close, and the clients, like a load balancer taking the
// instance out, stop there. No request is cut when the listener closes.
func TestMain_SIGTERMCutsNoKeepAliveRequest(t *testing.T) {
	const clients = 8
	p := startProc(t, "serve", procEnv(t.TempDir(), "APP_HTTP_DRAIN_DELAY=1s"), nil)
	addr := p.listening(t)
	l := startLoad(addr, createNote(t, addr), clients, true)
	settle(t, addr)
	if err := p.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.logs.String())
	}
	r := l.stop()
	report(t, "keep-alive load through SIGTERM", r)
	if r.Cut != 0 || r.Failed() != 0 {
		t.Errorf("%d requests cut, %d failed by the shutdown, want 0", r.Cut, r.Failed())
	}
	if r.Closed != clients {
		t.Errorf("%d of %d clients were told Connection: close", r.Closed, clients)
	}
}

// TestServe_OverloadShedsTheExcessQuickly fills the service past
// http.max_in_flight with writes that wait for a lock the test holds on the
// SQLite file: the next requests wait in the queue and are served once
// slots free up; past the queue a request gets 503 problem+json with
// Retry-After at once (while the queued ones still wait, well before the
// 20s queue timeout), and the probes and /status still answer, /status
// saying that it sheds.
func TestServe_OverloadShedsTheExcessQuickly(t *testing.T) {
	file := filepath.Join(t.TempDir(), "notes.db")
	a := startApp(t, map[string]string{
		"APP_HTTP_MAX_IN_FLIGHT": "2", "APP_HTTP_QUEUE_SIZE": "2", "APP_HTTP_QUEUE_TIMEOUT": "20s",
		"APP_STATUS_CACHE_TTL": "0s", "APP_DATABASE_SQLITE_PATH": file,
		"APP_DATABASE_BUSY_TIMEOUT": "60s", "APP_DATABASE_REQUEST_TIMEOUT": "60s", "APP_HTTP_WRITE_TIMEOUT": "90s",
	})
	lock, err := sql.Open("sqlite", "file:"+file)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	tx, err := lock.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(t.Context(), "DELETE FROM notes WHERE id = 'none'"); err != nil { // takes the write lock
		t.Fatal(err)
	}
	codes := make(chan int, 4)
	write := func() {
		resp, _ := a.do(t, "POST", "/v1/notes", `{"title":"waits for the lock","body":"b"}`)
		codes <- resp.StatusCode
	}
	shedding := func(want string) map[string]any {
		t.Helper()
		for range 500 {
			resp, m := a.do(t, "GET", "/status", "", "Authorization", "Bearer "+testToken)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("/status under overload: %d, want 200", resp.StatusCode)
			}
			c := m["checks"].(map[string]any)["http:shedding"].([]any)[0].(map[string]any)
			if out, _ := c["output"].(string); strings.Contains(out, want) {
				return c
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("/status never said %q", want)
		return nil
	}
	for range 2 {
		go write()
	}
	shedding("2 of 2 in flight, 0 of 2 queued")
	for range 2 {
		go write()
	}
	shedding("2 of 2 in flight, 2 of 2 queued")

	resp, problemBody := a.do(t, "GET", "/v1/notes", "")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "20" || !isProblem(resp) ||
		problemBody["request_id"] == nil {
		t.Errorf("past the queue: %d Retry-After %q %v, want 503 problem+json with Retry-After 20 and the request ID",
			resp.StatusCode, resp.Header.Get("Retry-After"), problemBody)
	}
	for _, probe := range []string{"/livez", "/readyz"} {
		if resp, _ := a.do(t, "GET", probe, ""); resp.StatusCode != http.StatusOK {
			t.Errorf("%s under overload: %d, want 200", probe, resp.StatusCode)
		}
	}
	c := shedding("requests refused with 503")
	if c["status"] != "warn" || c["observedValue"] != float64(1) {
		t.Errorf("http:shedding = %v, want warn with 1 request refused", c)
	}
	waitFor(t, a.logs, `"msg":"shedding load: requests refused with 503"`)

	// The lock goes: the two running writes finish, then the two that waited.
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if code := <-codes; code != http.StatusCreated {
			t.Errorf("write %d: %d, want 201", i, code)
		}
	}
}

// TestServe_SlowBodiesHoldNoSlot is the slow-sender attack: with one
// request in flight allowed and no queue, clients that send their bodies a
// byte at a time hold only their own connections, so another client is
// still served; a body still arriving at http.read_timeout gets 408
// problem+json with Connection: close.
func TestServe_SlowBodiesHoldNoSlot(t *testing.T) {
	a := startApp(t, map[string]string{
		"APP_HTTP_MAX_IN_FLIGHT": "1", "APP_HTTP_QUEUE_SIZE": "0", "APP_HTTP_READ_TIMEOUT": "2s",
	})
	var conns []net.Conn
	for range 8 {
		conn, err := net.Dial("tcp", strings.TrimPrefix(a.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		if _, err := io.WriteString(conn, "POST /v1/notes HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
	}
	time.Sleep(200 * time.Millisecond) // the slow bodies are being read
	for i := range 5 {
		if resp, m := a.do(t, "GET", "/v1/notes", ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d beside 8 slow senders: %d %v, want 200", i, resp.StatusCode, m)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(conns[0]), nil)
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&p)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !isProblem(resp) || !resp.Close ||
		p["type"] != "/problems/request-timeout" || p["request_id"] == nil {
		t.Errorf("a body still arriving at the read timeout: %d close=%v %v, want 408 /problems/request-timeout with Connection: close",
			resp.StatusCode, resp.Close, p)
	}
}

// TestServe_RequestsWaitingUnreadAreShed runs the program on one CPU
// (GOMAXPROCS=1) under more connections than it can serve: handlers that
// never wait hold their in-flight slot only while they run, so the
// in-flight limit sees nothing; what grows is how long requests wait unread.
// Past http.max_read_delay a share of requests gets 503 problem+json with
// Retry-After and the request ID, the probes still answer, /status says
// why it sheds, and once the load stops every request is served again.
func TestServe_RequestsWaitingUnreadAreShed(t *testing.T) {
	// The in-flight limit and its queue are set out of reach, so that what
	// is shed is the read delay's doing (on a loaded machine 300
	// connections can also fill 64 slots and 64 queued).
	p := startProc(t, "serve", procEnv(t.TempDir(), "GOMAXPROCS=1", "APP_HTTP_MAX_READ_DELAY=10ms", "APP_STATUS_CACHE_TTL=0s",
		"APP_HTTP_MAX_IN_FLIGHT=1000", "APP_HTTP_QUEUE_SIZE=1000"), nil)
	addr := p.listening(t)
	path := createNote(t, addr)
	a := &app{url: "http://" + addr, client: &http.Client{Timeout: 30 * time.Second}}

	l := startLoad(addr, path, 300, false)
	var refused *http.Response
	var refusal map[string]any
	for deadline := time.Now().Add(20 * time.Second); refused == nil && time.Now().Before(deadline); {
		if resp, m := a.do(t, "GET", path, ""); resp.StatusCode == http.StatusServiceUnavailable &&
			strings.Contains(fmt.Sprint(m["detail"]), "unread") {
			refused, refusal = resp, m
		}
	}
	if refused == nil {
		r := l.stop()
		report(t, "load", r)
		t.Fatalf("no request refused in 20 s on one CPU under 300 connections")
	}
	if refused.Header.Get("Retry-After") != "1" || !isProblem(refused) || refusal["request_id"] == nil ||
		!regexp.MustCompile(`unread: the service cannot keep up|recovering from a backlog of unread requests`).MatchString(fmt.Sprint(refusal["detail"])) {
		t.Errorf("refusal: Retry-After %q, %v; want 1 and problem+json with the request ID saying requests wait unread",
			refused.Header.Get("Retry-After"), refusal)
	}
	if resp, _ := a.do(t, "GET", "/livez", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("/livez while shedding: %d, want 200", resp.StatusCode)
	}
	// /status answers, and its shedding check warns. The overall status may
	// be 500: on a starved CPU another check (the database's response time)
	// can fail too, which is what an operator should then see.
	resp, m := a.do(t, "GET", "/status", "", "Authorization", "Bearer "+testToken)
	checks, _ := m["checks"].(map[string]any)
	c := map[string]any{}
	if list, ok := checks["http:shedding"].([]any); ok && len(list) > 0 {
		c, _ = list[0].(map[string]any)
	}
	if (resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusInternalServerError) ||
		c["status"] != "warn" || !strings.Contains(fmt.Sprint(c["output"]), "to drain requests waiting unread") {
		t.Errorf("/status while shedding: %d, checks %v; want 200 or 500 and an http:shedding warning naming requests waiting unread", resp.StatusCode, checks)
	}
	r := l.stop()
	report(t, "load", r)
	if r.Status[http.StatusServiceUnavailable] == 0 || r.Status[http.StatusOK] == 0 || r.Cut != 0 {
		t.Errorf("load: %v, cut %d; want some served, some refused, none cut", r.Status, r.Cut)
	}
	p.waitLog(t, "shedding load: requests refused with 503", 1)

	// Without the load, the requests that follow raise admission back.
	deadline := time.Now().Add(20 * time.Second)
	for ok := 0; ok < 50; {
		if time.Now().After(deadline) {
			t.Fatalf("after the load, only %d requests in a row served", ok)
		}
		if resp, _ := a.do(t, "GET", path, ""); resp.StatusCode == http.StatusOK {
			ok++
		} else {
			ok = 0
		}
	}
}

// TestWorkers_NoStaleReadsDuringARedisOutage: with Redis failing, each
// worker's breaker skips it; a worker has no in-process stand-in (one per
// worker would keep serving a note another worker changed), so reads go to
// the database and every worker sees an update at once.
func TestWorkers_NoStaleReadsDuringARedisOutage(t *testing.T) {
	rd := servicetest.StartRedis(t)
	master := startProc(t, "serve --workers 2", procEnv(t.TempDir(), "APP_CACHE_REDIS_URL="+rd.URL(),
		"APP_CACHE_FAILURE_THRESHOLD=2", "APP_CACHE_COOLDOWN=1m"), nil)
	addr := master.listening(t)
	master.waitLog(t, "worker ready", 2)
	path := createNote(t, addr)
	rd.Kill()
	a := &app{url: "http://" + addr, client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	// Until both workers' breakers are open (the shared socket spreads
	// connections unevenly).
	for deadline := time.Now().Add(30 * time.Second); strings.Count(master.logs.String(), "cache failing; skipping it") < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("the workers' breakers did not both open:\n%s", master.logs.String())
		}
		a.do(t, "GET", path, "")
	}
	noStaleReads(t, addr, path)
}

// TestWorkers_AbandonedReloadLeavesNoWorkerBehind: a reload whose new
// workers are not ready within http.worker_ready_timeout (here they wait
// for the migration lock another process holds) is abandoned, and its
// workers stop while still starting. They used to miss the retire signal
// (Go ignores SIGUSR1 until asked for it) and serve once the lock was free,
// beside the workers meant to stay.
func TestWorkers_AbandonedReloadLeavesNoWorkerBehind(t *testing.T) {
	dir := t.TempDir()
	master := startProc(t, "serve --workers 2", procEnv(dir, "APP_HTTP_WORKER_READY_TIMEOUT=1s"), nil)
	addr := master.listening(t)
	master.waitLog(t, "worker ready", 2)
	lock, err := os.OpenFile(filepath.Join(dir, "notes.db-migrate.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if err := master.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	master.waitLog(t, "waiting for the migration lock: another process is migrating this database", 2)
	master.waitLog(t, "reload failed; the running workers keep serving", 1)
	master.waitLog(t, "stopping: retired by the master before it was ready", 2)
	master.waitLog(t, "worker retired", 2)
	_ = lock.Close() // the lock is free: a worker left behind would now serve
	a := &app{url: "http://" + addr, client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	for range 20 {
		if resp, _ := a.do(t, "GET", "/livez", ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("/livez after the abandoned reload: %d", resp.StatusCode)
		}
	}
	if n := len(master.readyWorkers()); n != 2 {
		t.Errorf("%d workers became ready, want the first 2 only:\n%s", n, master.logs.String())
	}
	if err := master.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("master exit after SIGTERM: %v", err)
	}
}

// TestWorkers_MasterKilledWorkersFinishTheirRequests: when the master is
// killed (SIGKILL: nothing of it runs), each worker sees it gone and stops
// as in a drain: a request it was reading is still answered. The worker
// used to be sent SIGTERM by the kernel as its parent-death signal, more
// than once, and a second SIGTERM stops the service at once, cutting it.
func TestWorkers_MasterKilledWorkersFinishTheirRequests(t *testing.T) {
	master := startProc(t, "serve --workers 2", procEnv(t.TempDir()), nil)
	addr := master.listening(t)
	master.waitLog(t, "worker ready", 2)
	body := `{"title":"sent across the master's death","body":"b"}`
	var conns []net.Conn
	for range 4 { // on either worker
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /v1/notes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:10])
		conns = append(conns, c)
	}
	time.Sleep(200 * time.Millisecond) // each worker is reading a body
	if err := master.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	master.waitLog(t, "the master process is gone: stopping this worker, nothing supervises it", 1)
	time.Sleep(200 * time.Millisecond)
	for i, c := range conns {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, body[10:]); err != nil {
			t.Errorf("request %d: the rest of the body: %v", i, err)
			continue
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Errorf("request %d was cut when the master died: %v", i, err)
			continue
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Errorf("request %d: %d, want 201", i, resp.StatusCode)
		}
	}
}

// TestWorkers_SIGTERMLeavesNoSocketQueueingConnections: once the workers
// stop on SIGTERM and close their copies of the socket, nothing listens
// any more, even while a worker still finishes a request: a new client is
// refused at once, as by a single process, and may try another instance.
// The master used to hold its copy until it exited, so the kernel went on
// accepting connections that no one would serve, and reset each of them
// when the master closed it.
func TestWorkers_SIGTERMLeavesNoSocketQueueingConnections(t *testing.T) {
	master := startProc(t, "serve --workers 2", procEnv(t.TempDir()), nil)
	addr := master.listening(t)
	master.waitLog(t, "worker ready", 2)
	body := `{"title":"in flight through the stop","body":"b"}`
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/notes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:10])
	time.Sleep(200 * time.Millisecond) // a worker is reading the body
	if err := master.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	master.waitLog(t, "shutting down: draining in-flight requests", 2)
	time.Sleep(200 * time.Millisecond) // both workers have closed their listeners
	for i := range 5 {
		if late, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = late.Close()
			t.Errorf("dial %d while the last request finishes: accepted, want refused (a socket held open queues connections no one serves)", i)
		} else if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial %d: %v, want connection refused", i, err)
		}
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, body[10:]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("the request in flight through the stop: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("the request in flight through the stop: %d, want 201", resp.StatusCode)
	}
	select {
	case err := <-master.done:
		master.done <- err // for the cleanup
		if err != nil {
			t.Errorf("master exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("the master did not exit within 30s of SIGTERM")
	}
}

package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", to create the demo database
	"github.com/redis/go-redis/v9"

	"github.com/prodready/service/internal/servicetest"
)

// env is what every row shares: where things are, and the stack once a row
// has asked for it.
type env struct {
	root, bin, dir string
	stderr         io.Writer

	st    *stack
	stErr error
	once  sync.Once
}

// stack starts the production-like stack on first use; a failed start fails
// every row that needs it, with the same reason.
func (e *env) stack(ctx context.Context) (*stack, error) {
	e.once.Do(func() {
		e.st, e.stErr = startStack(ctx, e)
		if e.stErr != nil {
			e.stErr = fmt.Errorf("stack did not start: %w", e.stErr)
		}
	})
	return e.st, e.stErr
}

func (e *env) close() {
	if e.st != nil {
		e.st.stop()
	}
}

// stack is the running service and the real components around it.
type stack struct {
	e        *env
	url      string // http://127.0.0.1:PORT
	token    string // the status token (random per run)
	secret   string // the database password: must never show up anywhere
	dbName   string
	dbDirect string // DATABASE_URL without the proxy, for the backup scripts
	svcEnv   []string
	cfgFile  string
	backup   string // the backup file made at start

	svc     *process
	out     *logBuf // the service's stdout and stderr
	pg      *proxy
	redis   *proxy
	mailpit *mailpit
	syslog  *syslogReceiver
	apm     *servicetest.Collector // the fake New Relic collector
	cleanup []func()
}

// Defaults for this machine; CHECKLIST_* variables point elsewhere
// (.ci/run gives the run a database and Redis index of its own).
func setting(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func startStack(ctx context.Context, e *env) (*stack, error) {
	s := &stack{e: e, out: &logBuf{}, token: randomHex(16), secret: "pw-" + randomHex(8)}
	ok := false
	defer func() {
		if !ok {
			s.stop()
		}
	}()

	// PostgreSQL and Redis: the ones on this machine, started if down.
	pgAddr := setting("CHECKLIST_POSTGRES_ADDR", "127.0.0.1:5432")
	redisAddr := setting("CHECKLIST_REDIS_ADDR", "127.0.0.1:6379")
	if err := ensurePostgres(ctx, pgAddr); err != nil {
		return nil, err
	}
	if err := ensureRedis(ctx, redisAddr); err != nil {
		return nil, err
	}
	s.dbName = setting("CHECKLIST_DATABASE", "notes_checklist")
	if err := recreateDatabase(ctx, pgAddr, s.dbName); err != nil {
		return nil, err
	}
	// Trust authentication ignores the password; it is there so the rows
	// can prove a secret never leaks into logs, mails or /status.
	s.dbDirect = fmt.Sprintf("postgres://postgres:%s@%s/%s?sslmode=disable", s.secret, pgAddr, s.dbName)

	// Proxies, so rows can cut a dependency the way a network failure would.
	var err error
	if s.pg, err = newProxy(pgAddr); err != nil {
		return nil, err
	}
	if s.redis, err = newProxy(redisAddr); err != nil {
		return nil, err
	}
	if s.mailpit, err = startMailpit(ctx, e.root, e.dir); err != nil {
		return nil, err
	}
	s.cleanup = append(s.cleanup, s.mailpit.stop)
	if s.syslog, err = startSyslog(ctx, e.dir); err != nil {
		return nil, err
	}
	s.cleanup = append(s.cleanup, s.syslog.stop)
	// New Relic: staging refuses to run without monitoring; the agent
	// reports to the fake collector of internal/servicetest, on loopback,
	// with cloud detection off so nothing leaves the machine.
	if s.apm, err = servicetest.NewCollector("127.0.0.1:0", e.dir); err != nil {
		return nil, fmt.Errorf("fake New Relic collector: %w", err)
	}
	s.cleanup = append(s.cleanup, s.apm.Close)

	// The configuration: config.yaml as the ConfigMap carries it, plus what
	// the staging overlay and its secrets set, with local addresses.
	s.cfgFile = filepath.Join(e.dir, "config.yaml")
	base, err := os.ReadFile(filepath.Join(e.root, "config.yaml"))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(s.cfgFile, base, 0o600); err != nil { // #nosec G703 -- our own temporary file
		return nil, err
	}
	port, err := servicetest.LoopbackPort()
	if err != nil {
		return nil, err
	}
	s.url = "http://127.0.0.1:" + strconv.Itoa(port)
	s.svcEnv = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"APP_CONFIG=" + s.cfgFile,
		"APP_ENVIRONMENT=staging",
		"APP_DATABASE_MIGRATE_ON_START=false", // the migration Job migrates
		"DATABASE_URL=" + fmt.Sprintf("postgres://postgres:%s@%s/%s?sslmode=disable", s.secret, s.pg.addr(), s.dbName),
		"REDIS_URL=redis://" + s.redis.addr() + "/" + setting("CHECKLIST_REDIS_DB", "0"),
		"APP_CACHE_KEY_PREFIX=notes-checklist-" + randomHex(4) + ":",
		"STATUS_TOKENS=" + s.token,
		"APP_HTTP_HOST=127.0.0.1", "PORT=" + strconv.Itoa(port),
		"APP_EMAIL_ENABLED=true", "APP_EMAIL_RECIPIENTS=oncall@example.com",
		"APP_EMAIL_SMTP_HOST=127.0.0.1", "APP_EMAIL_SMTP_PORT=" + strconv.Itoa(s.mailpit.smtpPort),
		"APP_EMAIL_TLS_POLICY=none", // Mailpit is a local relay without TLS
		// The one key the staging overlay does not set: GET /debug/panic, so
		// the stack-trace-email row can fail a request on purpose
		// (production refuses the key).
		"APP_DEBUG_FAIL_ROUTE=true",
		"APP_LOG_SYSLOG_ENABLED=true", "APP_LOG_SYSLOG_NETWORK=tcp", "APP_LOG_SYSLOG_ADDRESS=" + s.syslog.addr,
		"NEW_RELIC_LICENSE_KEY=" + servicetest.LicenseKey, "NEW_RELIC_APP_NAME=notes-api (checklist)",
		"APP_NEWRELIC_COLLECTOR_HOST=" + s.apm.Host(), "APP_NEWRELIC_COLLECTOR_CA_FILE=" + s.apm.CAFile(),
		"APP_NEWRELIC_UTILIZATION_DETECTION=false",
	}

	// Migrations, as the migration Job runs them (monitoring off, as
	// there), then the service.
	if out, err := runCmd(ctx, append(append([]string{}, s.svcEnv...), "APP_NEWRELIC_ENABLED=false"), e.bin, "migrate", "up"); err != nil {
		return nil, fmt.Errorf("api migrate up: %w: %s", err, out)
	}
	if err := s.startService(ctx); err != nil {
		return nil, err
	}
	// A verified backup, as the nightly job makes: staging's backup:age check
	// fails until one is recorded.
	if s.backup, err = s.runBackup(ctx); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

func (s *stack) startService(ctx context.Context) error {
	p, err := startProcess(s.e.bin, []string{"serve"}, s.svcEnv, s.out)
	if err != nil {
		return err
	}
	s.svc = p
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if r, err := s.get(ctx, "/livez", ""); err == nil && r.code == http.StatusOK {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("api serve exited at start: %s", s.out.tail(10))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("api serve not answering /livez after 30s: %s", s.out.tail(10))
}

// runBackup runs scripts/backup/backup.sh against the demo database and
// returns the backup file it stored.
func (s *stack) runBackup(ctx context.Context) (string, error) {
	dir := filepath.Join(s.e.dir, "backups")
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(s.e.root, "scripts/backup/backup.sh")) // #nosec G204 -- the repository's own script
	cmd.Env = append(os.Environ(), "DATABASE_URL="+s.dbDirect, "BACKUP_DIR="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("backup.sh: %w: %s", err, lastLines(string(out), 3))
	}
	// The newest manifest names the backup: <name>.manifest.json beside <name>.<ext>.
	manifests, _ := filepath.Glob(filepath.Join(dir, "*.manifest.json"))
	sort.Strings(manifests)
	if len(manifests) > 0 {
		base := strings.TrimSuffix(manifests[len(manifests)-1], ".manifest.json")
		if files, _ := filepath.Glob(base + ".*"); len(files) > 0 {
			for _, f := range files {
				if f != manifests[len(manifests)-1] {
					return f, nil
				}
			}
		}
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return "", fmt.Errorf("backup.sh stored no dump in %s (found %v)", dir, names)
}

func (s *stack) stop() {
	if s.svc != nil {
		_, _ = s.svc.terminate(30 * time.Second)
	}
	for i := len(s.cleanup) - 1; i >= 0; i-- {
		s.cleanup[i]()
	}
	if s.pg != nil {
		s.pg.close()
	}
	if s.redis != nil {
		s.redis.close()
	}
}

// reply is one HTTP answer.
type reply struct {
	code   int
	ctype  string
	header http.Header
	body   []byte
	took   time.Duration
}

func (s *stack) get(ctx context.Context, path, token string) (reply, error) {
	return s.do(ctx, http.MethodGet, path, token, nil, "")
}

func (s *stack) do(ctx context.Context, method, path, token string, hdr map[string]string, body string) (reply, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, rd)
	if err != nil {
		return reply{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{code: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), header: resp.Header, body: b, took: time.Since(start)}, err
}

// healthBody is the part of application/health+json the rows read.
type healthBody struct {
	Status string                   `json:"status"`
	Output string                   `json:"output"`
	Checks map[string][]checkResult `json:"checks"`
}

type checkResult struct {
	Status        string `json:"status"`
	Output        string `json:"output"`
	ObservedValue any    `json:"observedValue"`
	ObservedUnit  string `json:"observedUnit"`
}

// status calls /status with the token and decodes the answer.
func (s *stack) status(ctx context.Context) (reply, healthBody, error) {
	r, err := s.get(ctx, "/status", s.token)
	if err != nil {
		return r, healthBody{}, err
	}
	var h healthBody
	if err := json.Unmarshal(r.body, &h); err != nil {
		return r, h, fmt.Errorf("/status %d: body is not JSON: %q", r.code, truncate(string(r.body), 200))
	}
	return r, h, nil
}

// waitStatus polls /status until want(code, body) holds or timeout passes.
func (s *stack) waitStatus(ctx context.Context, timeout time.Duration, want func(int, healthBody) bool) (reply, healthBody, error) {
	deadline := time.Now().Add(timeout)
	for {
		r, h, err := s.status(ctx)
		if err == nil && want(r.code, h) {
			return r, h, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if err == nil {
				err = fmt.Errorf("/status still %d %s after %s", r.code, h.summary(), timeout)
			}
			return r, h, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// summary lists each check as name=status.
func (h healthBody) summary() string {
	var parts []string
	for name, rs := range h.Checks {
		for _, r := range rs {
			parts = append(parts, name+"="+r.Status)
		}
	}
	sort.Strings(parts)
	return h.Status + " [" + strings.Join(parts, " ") + "]"
}

func (h healthBody) check(name string) (checkResult, bool) {
	if rs := h.Checks[name]; len(rs) > 0 {
		return rs[0], true
	}
	return checkResult{}, false
}

// Machine services.

func ensurePostgres(ctx context.Context, addr string) error {
	if dialable(addr) {
		return nil
	}
	versions, _ := filepath.Glob("/etc/postgresql/*")
	if len(versions) == 0 {
		return fmt.Errorf("PostgreSQL is not listening on %s and no cluster is installed (apt-get install postgresql)", addr)
	}
	sort.Strings(versions)
	v := filepath.Base(versions[len(versions)-1])
	if out, err := runCmd(ctx, os.Environ(), "pg_ctlcluster", "--skip-systemctl-redirect", v, "main", "start"); err != nil {
		return fmt.Errorf("start PostgreSQL %s: %w: %s", v, err, out)
	}
	return waitDial(addr, 30*time.Second, "PostgreSQL")
}

func ensureRedis(ctx context.Context, addr string) error {
	if dialable(addr) {
		return nil
	}
	host, port, _ := net.SplitHostPort(addr)
	_ = os.MkdirAll("/var/lib/redis", 0o750)
	_ = os.MkdirAll("/var/log/redis", 0o750)
	if out, err := runCmd(ctx, os.Environ(), "redis-server", "--daemonize", "yes", "--bind", host, "--port", port,
		"--save", "", "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log"); err != nil {
		return fmt.Errorf("start Redis: %w: %s", err, out)
	}
	if err := waitDial(addr, 30*time.Second, "Redis"); err != nil {
		return err
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	return c.Ping(ctx).Err()
}

// recreateDatabase gives each run an empty database, as a new environment has.
func recreateDatabase(ctx context.Context, addr, name string) error {
	if !validIdent(name) {
		return fmt.Errorf("CHECKLIST_DATABASE %q: want letters, digits and underscores", name)
	}
	db, err := sql.Open("pgx", "postgres://postgres@"+addr+"/postgres?sslmode=disable")
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

func validIdent(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r != '_' && (r < 'a' || r > 'z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}

// Processes.

// process is a child the checklist started and must stop.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func startProcess(bin string, args, environ []string, out io.Writer) (*process, error) {
	// Not CommandContext: these outlive the call; stop and terminate end them.
	cmd := exec.Command(bin, args...) //nolint:noctx,gosec // our own binaries; stopped by terminate, not a context
	cmd.Env = environ
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the checklist
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *process) signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// terminate sends SIGTERM and waits up to grace, then kills. It reports
// how the process ended.
func (p *process) terminate(grace time.Duration) (time.Duration, error) {
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return time.Since(start), p.err
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return time.Since(start), fmt.Errorf("still running %s after SIGTERM: killed", grace)
	}
}

func runCmd(ctx context.Context, environ []string, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...) // #nosec G204 -- our own commands
	cmd.Env = environ
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Mailpit.

type mailpit struct {
	smtpPort int
	api      string
	proc     *process
	out      *logBuf
}

func startMailpit(ctx context.Context, root, dir string) (*mailpit, error) {
	bin := filepath.Join(root, ".tools", "mailpit")
	if _, err := os.Stat(bin); err != nil {
		if bin, err = exec.LookPath("mailpit"); err != nil {
			return nil, errors.New("mailpit is missing: make mailpit installs it into .tools/ (make checklist does)")
		}
	}
	smtpPort, err := servicetest.LoopbackPort()
	if err != nil {
		return nil, err
	}
	httpPort, err := servicetest.LoopbackPort()
	if err != nil {
		return nil, err
	}
	m := &mailpit{smtpPort: smtpPort, api: "http://127.0.0.1:" + strconv.Itoa(httpPort), out: &logBuf{}}
	m.proc, err = startProcess(bin, []string{
		"--smtp", "127.0.0.1:" + strconv.Itoa(smtpPort), "--listen", "127.0.0.1:" + strconv.Itoa(httpPort),
		"--database", filepath.Join(dir, "mailpit.db"), "--disable-version-check", "--smtp-disable-rdns",
		"--quiet",
	}, os.Environ(), m.out)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := m.messages(ctx); err == nil && dialable("127.0.0.1:"+strconv.Itoa(smtpPort)) {
			return m, nil
		}
		if m.proc.exited() {
			return nil, fmt.Errorf("mailpit exited at start: %s", m.out.tail(5))
		}
		time.Sleep(50 * time.Millisecond)
	}
	m.stop()
	return nil, fmt.Errorf("mailpit not ready after 20s: %s", m.out.tail(5))
}

func (m *mailpit) stop() { _, _ = m.proc.terminate(5 * time.Second) }

type mail struct {
	ID      string `json:"ID"`
	Subject string `json:"Subject"`
	Text    string `json:"-"`
}

// messages lists what arrived, newest first, without bodies.
func (m *mailpit) messages(ctx context.Context) ([]mail, error) {
	var list struct {
		Messages []mail `json:"messages"`
	}
	err := httpJSON(ctx, m.api+"/api/v1/messages?limit=200", &list)
	return list.Messages, err
}

// text returns the plain-text body of one message.
func (m *mailpit) text(ctx context.Context, id string) (string, error) {
	var msg struct {
		Text string `json:"Text"`
	}
	err := httpJSON(ctx, m.api+"/api/v1/message/"+id, &msg)
	return msg.Text, err
}

// waitMail waits until a message satisfying match (subject, plain-text
// body) arrives, and returns it and how many messages match.
func (m *mailpit) waitMail(ctx context.Context, timeout time.Duration, match func(subject, text string) bool) (mail, int, error) {
	deadline := time.Now().Add(timeout)
	texts := map[string]string{}
	for {
		msgs, err := m.messages(ctx)
		if err != nil {
			return mail{}, 0, err
		}
		n := 0
		var found *mail
		for i := range msgs {
			t, ok := texts[msgs[i].ID]
			if !ok {
				if t, err = m.text(ctx, msgs[i].ID); err != nil {
					return mail{}, 0, err
				}
				texts[msgs[i].ID] = t
			}
			if match(msgs[i].Subject, t) {
				n++
				if found == nil {
					found = &msgs[i]
					found.Text = t
				}
			}
		}
		if found != nil {
			return *found, n, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			var subjects []string
			for _, x := range msgs {
				subjects = append(subjects, x.Subject)
			}
			return mail{}, 0, fmt.Errorf("no such mail in Mailpit after %s (it holds %d: %q)", timeout, len(msgs), subjects)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func httpJSON(ctx context.Context, url string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// Small helpers.

// logBuf collects a process's output (the tests' goroutine-safe
// servicetest.LogBuffer) and finds lines in it.
type logBuf struct {
	servicetest.LogBuffer
}

func (l *logBuf) tail(n int) string { return lastLines(l.String(), n) }

// lines returns the lines containing every one of subs.
func (l *logBuf) lines(subs ...string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		all := true
		for _, s := range subs {
			if !strings.Contains(line, s) {
				all = false
				break
			}
		}
		if all && line != "" {
			out = append(out, line)
		}
	}
	return out
}

// waitLine waits for a line containing every one of subs.
func (l *logBuf) waitLine(ctx context.Context, timeout time.Duration, subs ...string) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		if ls := l.lines(subs...); len(ls) > 0 {
			return ls[0], nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return "", fmt.Errorf("no log line with %q after %s", subs, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func dialable(addr string) bool {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

func waitDial(addr string, timeout time.Duration, what string) error {
	deadline := time.Now().Add(timeout)
	for !dialable(addr) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening on %s after %s", what, addr, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// anotherInstance is the environment of one more instance of the service
// beside the stack's (same database, Redis and configuration) on a loopback
// port of its own, and that port.
func (s *stack) anotherInstance() (environ []string, port int, err error) {
	port, err = servicetest.LoopbackPort()
	if err != nil {
		return nil, 0, err
	}
	return append(append([]string{}, s.svcEnv...), "PORT="+strconv.Itoa(port)), port, nil
}

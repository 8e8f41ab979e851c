package main

import (
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
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/prodready/service/internal/servicetest"
)

// rows lists every item of the standard in its order: 13 features, 8
// infrastructure items, 2 principles.
func rows() []row {
	return []row{
		{"env-config", "feature", "Configuration via environment variables", rowEnvConfig},
		{"yaml-config", "feature", "Configuration via flatfile (YAML)", rowYAMLConfig},
		{"defaults", "feature", "Sane, production-like default configuration", rowDefaults},
		{"workers", "feature", "Parallel HTTP workers", rowWorkers},
		{"stdout-logs", "feature", "Logs to standard out/error", rowStdoutLogs},
		{"syslog", "feature", "Logs to syslog", rowSyslog},
		{"stack-trace-email", "feature", "Stack-trace e-mails to a configurable list", rowStackTraceEmail},
		{"log-levels", "feature", "Configurable log levels", rowLogLevels},
		{"coverage", "feature", "Test suite that measures code coverage", rowCoverage},
		{"status-token", "feature", "Status route with a secret token", rowStatusToken},
		{"dependency-checks", "feature", "Health check validates each dependency", rowDependencyChecks},
		{"machine-readable", "feature", "Health check answers machine-readable in all cases", rowMachineReadable},
		{"status-500", "feature", "Health check returns 500 when a component fails", rowStatus500},

		{"ci", "infrastructure", "CI builds run the full test suite", rowCI},
		{"cd-dev", "infrastructure", "Automated continuous delivery to a development environment", rowCDDev},
		{"release-docs", "infrastructure", "Documented release process", rowReleaseDocs},
		{"staging-promotion", "infrastructure", "Staging and production builds, staging promoted", rowStagingPromotion},
		{"sign-off", "infrastructure", "Sign-off on staging before production", rowSignOff},
		{"apm", "infrastructure", "Application/resource monitoring", rowAPM},
		{"availability", "infrastructure", "Service availability monitoring", rowAvailability},
		{"backups", "infrastructure", "Automated, periodic, restorable backups", rowBackups},

		{"twelve-factor", "principle", "Twelve-factor baseline (config, logs, port binding, backing services, disposability)", rowTwelveFactor},
		{"no-silent-failure", "principle", "No change obscures logging or fails silently; proven in a production-like environment", rowNoSilentFailure},
	}
}

// configLine finds key's row in `api config` output: value, source.
func configLine(out, key string) (value, source string, ok bool) {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == key { // KEY VALUE SOURCE... VARIABLE
			return f[1], strings.Join(f[2:len(f)-1], " "), true
		}
	}
	return "", "", false
}

func bareEnv(extra ...string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, extra...)
}

func rowEnvConfig(ctx context.Context, e *env) (string, error) {
	out, err := runCmd(ctx, bareEnv("APP_ENVIRONMENT=development", "APP_LOG_LEVEL=debug", "PORT=9123", "STATUS_TOKENS=abcdefghijklmnopqrstuvwxyz"), e.bin, "config")
	if err != nil {
		return "", fmt.Errorf("api config: %w: %s", err, lastLines(out, 3))
	}
	lv, lsrc, _ := configLine(out, "log.level")
	pv, psrc, _ := configLine(out, "http.port")
	tv, tsrc, _ := configLine(out, "status.tokens")
	if lv != "debug" || !strings.Contains(lsrc, "APP_LOG_LEVEL") || pv != "9123" || !strings.Contains(psrc, "PORT") {
		return "", fmt.Errorf("api config did not take the environment: log.level=%s (%s), http.port=%s (%s)", lv, lsrc, pv, psrc)
	}
	if strings.Contains(out, "abcdefghijklmnopqrstuvwxyz") {
		return "", errors.New("api config printed the status token from STATUS_TOKENS")
	}
	return fmt.Sprintf("APP_ENVIRONMENT=development APP_LOG_LEVEL=debug PORT=9123 bin/api config: log.level=%s from %s, http.port=%s from %s, status.tokens=%s from %s (redacted)",
		lv, lsrc, pv, psrc, tv, tsrc), nil
}

func rowYAMLConfig(ctx context.Context, e *env) (string, error) {
	good := filepath.Join(e.dir, "good.yaml")
	if err := os.WriteFile(good, []byte("log:\n  level: warn\nhttp:\n  port: 9124\n"), 0o600); err != nil {
		return "", err
	}
	out, err := runCmd(ctx, bareEnv("APP_ENVIRONMENT=development"), e.bin, "config", "--config", good)
	if err != nil {
		return "", fmt.Errorf("api config --config: %w: %s", err, lastLines(out, 3))
	}
	lv, lsrc, _ := configLine(out, "log.level")
	if lv != "warn" || !strings.Contains(lsrc, "good.yaml:2") {
		return "", fmt.Errorf("log.level=%s from %s, want warn from good.yaml:2", lv, lsrc)
	}
	bad := filepath.Join(e.dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("log:\n  level: loud\nhttp:\n  port: 99999\n  bogus: 1\n"), 0o600); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, e.bin, "config", "--config", bad) // #nosec G204 -- our binary
	cmd.Env = bareEnv("APP_ENVIRONMENT=development")
	bout, _ := cmd.CombinedOutput()
	code := cmd.ProcessState.ExitCode()
	found := 0
	for _, want := range []string{"bad.yaml:2", "bad.yaml:4", "bad.yaml:5"} {
		if strings.Contains(string(bout), want) {
			found++
		}
	}
	if code != 2 || found != 3 {
		return "", fmt.Errorf("a file with 3 mistakes: exit %d, %d of 3 named with file:line: %s", code, found, lastLines(string(bout), 4))
	}
	return fmt.Sprintf("bin/api config --config good.yaml: log.level=warn from %s; a file with 3 mistakes: exit 2, all 3 reported with file:line (bad.yaml:2, :4, :5)", filepath.Base(lsrc)), nil
}

func rowDefaults(ctx context.Context, e *env) (string, error) {
	// With nothing set the defaults are production's, which refuses to run
	// without PostgreSQL and a status token: api config prints the values,
	// then those two problems, and exits 2.
	cmd0 := exec.CommandContext(ctx, e.bin, "config") // #nosec G204 -- our binary
	cmd0.Env = bareEnv()
	b0, _ := cmd0.CombinedOutput()
	out := string(b0)
	if code := cmd0.ProcessState.ExitCode(); code != 2 || !strings.Contains(out, "database.url") || !strings.Contains(out, "status.tokens") {
		return "", fmt.Errorf("bin/api config with nothing set: exit %d, want 2 naming database.url and status.tokens: %s", code, lastLines(out, 3))
	}
	var got []string
	for key, want := range map[string]string{
		"environment": "production", "log.format": "json", "http.read_header_timeout": "5s",
		"http.shutdown_timeout": "20s", "email.tls_policy": "mandatory",
	} {
		v, src, _ := configLine(out, key)
		if v != want || src != "default" {
			return "", fmt.Errorf("default %s = %s (%s), want %s", key, v, src, want)
		}
		got = append(got, key+"="+v)
	}
	// With nothing set, production refuses to start without what it needs.
	dir, err := os.MkdirTemp(e.dir, "bare-")
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, e.bin, "serve") // #nosec G204 -- our binary
	cmd.Env, cmd.Dir = bareEnv("PORT=0"), dir
	sout, _ := cmd.CombinedOutput()
	code := cmd.ProcessState.ExitCode()
	s := string(sout)
	if code != 2 || !strings.Contains(s, "database") || !strings.Contains(s, "status") {
		return "", fmt.Errorf("bin/api serve with no configuration: exit %d: %s", code, lastLines(s, 3))
	}
	sort.Strings(got)
	return fmt.Sprintf("defaults: %s; with nothing set, bin/api config and bin/api serve exit 2: production refuses to run without PostgreSQL (database.url) and a status token (status.tokens)", strings.Join(got, ", ")), nil
}

func rowStdoutLogs(ctx context.Context, e *env) (string, error) {
	s, err := e.stack(ctx)
	if err != nil {
		return "", err
	}
	id := "checklist-stdout-" + randomHex(4)
	if _, err := s.do(ctx, http.MethodGet, "/v1/notes", "", map[string]string{"X-Request-ID": id}, ""); err != nil {
		return "", err
	}
	line, err := s.out.waitLine(ctx, 5*time.Second, `"msg":"request"`, id)
	if err != nil {
		return "", fmt.Errorf("service stdout: %w", err)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(line), &rec); err != nil {
		return "", fmt.Errorf("access record is not JSON: %s", truncate(line, 120))
	}
	return fmt.Sprintf("stdout carried the JSON access record of request %s: level=%v status=%v route=%v",
		id, rec["level"], rec["status"], firstOf(rec, "route", "path")), nil
}

func firstOf(m map[string]any, keys ...string) any {
	for _, k := range keys {
		if v, ok := m[k]; ok {
			return v
		}
	}
	return nil
}

func rowSyslog(ctx context.Context, e *env) (string, error) {
	s, err := e.stack(ctx)
	if err != nil {
		return "", err
	}
	id := "checklist-syslog-" + randomHex(4)
	if _, err := s.do(ctx, http.MethodGet, "/v1/notes", "", map[string]string{"X-Request-ID": id}, ""); err != nil {
		return "", err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, line := range strings.Split(s.syslog.received(), "\n") {
			if strings.Contains(line, id) {
				_, h, _ := s.status(ctx)
				c, _ := h.check("syslog:connection")
				return fmt.Sprintf("%s on %s wrote the access record of request %s (%s); /status syslog:connection %s",
					s.syslog.kind, s.syslog.addr, id, truncate(line, 60), c.Status), nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s received no record of request %s in 10s", s.syslog.kind, id)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func rowStackTraceEmail(ctx context.Context, e *env) (string, error) {
	s, err := e.stack(ctx)
	if err != nil {
		return "", err
	}
	// GET /debug/panic panics on purpose (debug.fail_route, on in this
	// stack; refused in production): the service answers a 500 problem and
	// mails the stack trace, with the request, to the list. Outside
	// development it needs a status token: a stranger gets a 401 problem and
	// no mail, so cannot spend the alert budget.
	anon := "checklist-mail-anon-" + randomHex(4)
	r, err := s.do(ctx, http.MethodGet, "/debug/panic", "", map[string]string{"X-Request-ID": anon}, "")
	if err != nil {
		return "", err
	}
	if r.code != http.StatusUnauthorized || !strings.HasPrefix(r.ctype, "application/problem+json") || !strings.Contains(string(r.body), "/problems/unauthorized") {
		return "", fmt.Errorf("GET /debug/panic without a token: %d %s %q, want a 401 /problems/unauthorized", r.code, r.ctype, truncate(string(r.body), 100))
	}
	id := "checklist-mail-" + randomHex(4)
	r, err = s.do(ctx, http.MethodGet, "/debug/panic", s.token, map[string]string{"X-Request-ID": id}, "")
	if err != nil {
		return "", err
	}
	if r.code != http.StatusInternalServerError || !strings.HasPrefix(r.ctype, "application/problem+json") || !strings.Contains(string(r.body), id) {
		return "", fmt.Errorf("GET /debug/panic: %d %s %q, want a 500 problem+json naming request %s", r.code, r.ctype, truncate(string(r.body), 100), id)
	}
	m, _, err := s.mailpit.waitMail(ctx, 15*time.Second, func(_, text string) bool { return strings.Contains(text, id) })
	if err != nil {
		return "", fmt.Errorf("no mail naming request %s: %w", id, err)
	}
	if !strings.Contains(m.Subject, "panic: debug: a deliberate panic") || !strings.Contains(m.Text, "Stack trace") ||
		!strings.Contains(m.Text, "goroutine ") || !strings.Contains(m.Text, "addFailRoutes") {
		return "", fmt.Errorf("the mail %q has no stack trace of the panic:\n%s", m.Subject, truncate(m.Text, 400))
	}
	for _, secret := range []string{s.secret, s.token} {
		if strings.Contains(m.Text, secret) || strings.Contains(m.Subject, secret) {
			return "", fmt.Errorf("the mail %q carries a secret", m.Subject)
		}
	}
	// Mails leave in order: the anonymous request's would be there by now.
	if _, _, err := s.mailpit.waitMail(ctx, 0, func(_, text string) bool { return strings.Contains(text, anon) }); err == nil {
		return "", fmt.Errorf("a mail names request %s, refused for want of a token", anon)
	}
	return fmt.Sprintf("GET /debug/panic without a token 401 problem+json and no mail; with the status token 500 problem+json, and Mailpit received %q for oncall@example.com naming request %s, with the stack trace and no secret", m.Subject, id), nil
}

func rowLogLevels(ctx context.Context, e *env) (string, error) {
	s, err := e.stack(ctx)
	if err != nil {
		return "", err
	}
	set := func(from, to string) error {
		b, err := os.ReadFile(s.cfgFile)
		if err != nil {
			return err
		}
		old := "\n  level: " + from + "\n"
		if !strings.Contains(string(b), old) {
			return fmt.Errorf("config file has no log level %s", from)
		}
		if err := os.WriteFile(s.cfgFile, []byte(strings.Replace(string(b), old, "\n  level: "+to+"\n", 1)), 0o600); err != nil { // #nosec G703 -- our own temporary file
			return err
		}
		return s.svc.signal(syscall.SIGHUP)
	}
	if err := set("info", "debug"); err != nil {
		return "", err
	}
	line, err := s.out.waitLine(ctx, 5*time.Second, "log level changed", `"to":"debug"`)
	if err != nil {
		return "", fmt.Errorf("after SIGHUP to pid %d: %w", s.svc.pid(), err)
	}
	_ = line
	if err := set("debug", "info"); err != nil {
		return "", err
	}
	if _, err := s.out.waitLine(ctx, 5*time.Second, "log level changed", `"from":"debug"`, `"to":"info"`); err != nil {
		return "", fmt.Errorf("after the second SIGHUP: %w", err)
	}
	return fmt.Sprintf("log.level info -> debug in the config file, kill -HUP %d: logged \"log level changed\" from info to debug without a restart, and back to info", s.svc.pid()), nil
}

var coverTotal = regexp.MustCompile(`(?m)^total:\s+\(statements\)\s+([0-9.]+)%`)

func rowCoverage(ctx context.Context, e *env) (string, error) {
	// The full measurement is `make test` (minutes); here one package is
	// measured live, and the last full figure is read when there is one.
	out, err := runCmd(ctx, append(os.Environ(), "GOFLAGS="+servicetest.GoFlags()), "go", "test", "-count=1", "-cover", "./internal/problem/")
	if err != nil {
		return "", fmt.Errorf("go test -cover: %w: %s", err, lastLines(out, 3))
	}
	m := regexp.MustCompile(`coverage: ([0-9.]+)% of statements`).FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("go test -cover printed no coverage: %s", lastLines(out, 2))
	}
	ev := fmt.Sprintf("go test -cover ./internal/problem/ measured %s%% live", m[1])
	profile := filepath.Join(e.root, "coverage", "cover.out")
	if st, err := os.Stat(profile); err == nil {
		fout, err := runCmd(ctx, os.Environ(), "go", "tool", "cover", "-func="+profile)
		if t := coverTotal.FindStringSubmatch(fout); err == nil && t != nil {
			ev += fmt.Sprintf("; the last make test (%s) measured %s%% of internal/... and cmd/... against the 80%% gate",
				st.ModTime().UTC().Format("2006-01-02 15:04Z"), t[1])
		}
	} else {
		ev += "; make test measures the whole suite and enforces 80%"
	}
	return ev, nil
}

func rowStatusToken(ctx context.Context, e *env) (string, error) {
	s, err := e.stack(ctx)
	if err != nil {
		return "", err
	}
	none, err := s.get(ctx, "/status", "")
	if err != nil {
		return "", err
	}
	wrong, err := s.get(ctx, "/status", "not-the-token-"+randomHex(4))
	if err != nil {
		return "", err
	}
	right, h, err := s.status(ctx)
	if err != nil {
		return "", err
	}
	if none.code != http.StatusUnauthorized || wrong.code != http.StatusUnauthorized || right.code != http.StatusOK {
		return "", fmt.Errorf("/status: no token %d, wrong token %d, right token %d %s; want 401, 401, 200", none.code, wrong.code, right.code, h.summary())
	}
	// A guesser on another loopback address: after status.token_failure_limit
	// (10) wrong tokens it gets 429, even with the right one; this address
	// (the monitor's) is not affected.
	guess, err := guessTokens(ctx, s, 11)
	if err != nil {
		return "", err
	}
	again, _, err := s.status(ctx)
	if err != nil {
		return "", err
	}
	if again.code != http.StatusOK {
		return "", fmt.Errorf("/status with the token from 127.0.0.1 after another address was blocked: %d, want 200", again.code)
	}
	if !strings.Contains(s.out.String(), `"client":"127.0.0.2"`) {
		return "", errors.New("no warn line names the blocked address 127.0.0.2")
	}
	if strings.Contains(s.out.String(), s.token) || strings.Contains(s.out.String(), "guess-") {
		return "", errors.New("a status token or a guess appears in the service's log")
	}
	return fmt.Sprintf("/status without a token 401, with a wrong one 401, with the token 200 %q; %s, 127.0.0.1 still 200; no token in the log", h.Status, guess), nil
}

// guessTokens sends n wrong tokens to /status from 127.0.0.2, then the right
// one, and checks the answers: 401 until the limit, then 429 with
// Retry-After and a health+json body.
func guessTokens(ctx context.Context, s *stack, n int) (string, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
	defer client.CloseIdleConnections()
	type answer struct {
		StatusCode int
		Header     http.Header
	}
	ask := func(tok string) (answer, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/status", nil)
		if err != nil {
			return answer{}, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			return answer{}, err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return answer{resp.StatusCode, resp.Header}, nil
	}
	var codes []int
	for i := range n {
		resp, err := ask(fmt.Sprintf("guess-%04d", i))
		if err != nil {
			return "", err
		}
		codes = append(codes, resp.StatusCode)
	}
	blocked, err := ask("guess-more")
	if err != nil {
		return "", err
	}
	right, err := ask(s.token)
	if err != nil {
		return "", err
	}
	last := codes[len(codes)-1]
	if codes[0] != http.StatusUnauthorized || last != http.StatusTooManyRequests || blocked.StatusCode != http.StatusTooManyRequests ||
		blocked.Header.Get("Retry-After") == "" || blocked.Header.Get("Content-Type") != "application/health+json" || right.StatusCode != http.StatusOK {
		return "", fmt.Errorf("guessing from 127.0.0.2: codes %v, then a wrong token %d (Retry-After %q, %s), the right one %d; want 401s, then 429 with Retry-After as health+json, and 200 for the right token",
			codes, blocked.StatusCode, blocked.Header.Get("Retry-After"), blocked.Header.Get("Content-Type"), right.StatusCode)
	}
	return fmt.Sprintf("%d guesses from 127.0.0.2: 401 ... then 429 (Retry-After %ss); the right token from there still 200, so guesses cannot lock the monitor out",
		n, blocked.Header.Get("Retry-After")), nil
}

func rowDependencyChecks(ctx context.Context, e *env) (string, error) {
	s, err := e.stack(ctx)
	if err != nil {
		return "", err
	}
	_, h, err := s.waitStatus(ctx, 10*time.Second, func(code int, h healthBody) bool { return code == http.StatusOK })
	if err != nil {
		return "", err
	}
	want := []string{"database:responseTime", "database:migrations", "cache:responseTime", "smtp:responseTime", "syslog:connection", "backup:age"}
	var parts []string
	for _, name := range want {
		c, ok := h.check(name)
		if !ok {
			return "", fmt.Errorf("/status has no %s check: %s", name, h.summary())
		}
		if c.Status != "pass" {
			return "", fmt.Errorf("%s is %s: %s", name, c.Status, c.Output)
		}
		v := ""
		if c.ObservedValue != nil {
			v = fmt.Sprintf(" %v%s", c.ObservedValue, c.ObservedUnit)
		}
		parts = append(parts, name+" pass"+v)
	}
	return "PostgreSQL, migrations, Redis, Mailpit (SMTP EHLO), rsyslog (TCP) and the last backup each checked: " + strings.Join(parts, ", "), nil
}

func rowMachineReadable(ctx context.Context, e *env) (string, error) {
	s, err := e.stack(ctx)
	if err != nil {
		return "", err
	}
	type probe struct {
		what string
		do   func() (reply, error)
	}
	probes := []probe{
		{"pass", func() (reply, error) { return s.get(ctx, "/status", s.token) }},
		{"no token", func() (reply, error) { return s.get(ctx, "/status", "") }},
		{"POST", func() (reply, error) { return s.do(ctx, http.MethodPost, "/status", s.token, nil, "") }},
		{"Redis cut", func() (reply, error) {
			s.redis.cut()
			defer s.redis.restore()
			r, _, err := s.waitStatus(ctx, 10*time.Second, func(code int, _ healthBody) bool { return code == http.StatusInternalServerError })
			return r, err
		}},
	}
	var parts []string
	for _, p := range probes {
		r, err := p.do()
		if err != nil {
			return "", fmt.Errorf("%s: %w", p.what, err)
		}
		var h healthBody
		if !strings.HasPrefix(r.ctype, "application/health+json") || json.Unmarshal(r.body, &h) != nil || h.Status == "" {
			return "", fmt.Errorf("%s: %d %s %q is not health+json with a status", p.what, r.code, r.ctype, truncate(string(r.body), 80))
		}
		parts = append(parts, fmt.Sprintf("%s %d %q", p.what, r.code, h.Status))
	}
	if _, _, err := s.waitStatus(ctx, 15*time.Second, func(code int, _ healthBody) bool { return code == http.StatusOK }); err != nil {
		return "", fmt.Errorf("after restoring Redis: %w", err)
	}
	return "application/health+json with a status field for every answer: " + strings.Join(parts, ", "), nil
}

func rowStatus500(ctx context.Context, e *env) (string, error) {
	s, err := e.stack(ctx)
	if err != nil {
		return "", err
	}
	if _, _, err := s.waitStatus(ctx, 15*time.Second, func(code int, _ healthBody) bool { return code == http.StatusOK }); err != nil {
		return "", fmt.Errorf("before the cut: %w", err)
	}
	start := time.Now()
	s.redis.cut()
	r, h, err := s.waitStatus(ctx, 15*time.Second, func(code int, h healthBody) bool {
		c, _ := h.check("cache:responseTime")
		return code == http.StatusInternalServerError && c.Status == "fail"
	})
	cutTook := time.Since(start)
	s.redis.restore()
	if err != nil {
		return "", fmt.Errorf("with Redis cut: %w", err)
	}
	c, _ := h.check("cache:responseTime")
	start = time.Now()
	if _, _, err := s.waitStatus(ctx, 15*time.Second, func(code int, _ healthBody) bool { return code == http.StatusOK }); err != nil {
		return "", fmt.Errorf("with Redis restored: %w", err)
	}
	return fmt.Sprintf("Redis cut: /status %d with cache:responseTime fail (%q) within %.1f s (cache_ttl 2s); restored: 200 again in %.1f s",
		r.code, truncate(c.Output, 60), cutTook.Seconds(), time.Since(start).Seconds()), nil
}

package health_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prodready/service/internal/cache"
	"github.com/prodready/service/internal/database"
	"github.com/prodready/service/internal/health"
	"github.com/prodready/service/internal/servicetest"
)

// proxied rewrites a service URL to go through a servicetest.Proxy.
func proxied(t *testing.T, raw string) (string, *servicetest.Proxy) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	p := servicetest.NewProxy(t, u.Host)
	u.Host = p.Addr()
	return u.String(), p
}

type statusBody struct {
	Status string                          `json:"status"`
	Checks map[string][]health.CheckResult `json:"checks"`
}

// TestStatus_RealDependencies runs the status route against real PostgreSQL
// and Redis, each behind a TCP proxy, and cuts them one at a time.
func TestStatus_RealDependencies(t *testing.T) {
	pgURL, pg := proxied(t, servicetest.PostgresURL(t))
	redisURL, rd := proxied(t, servicetest.URL(t, "TEST_REDIS_URL", "Redis"))
	ctx := context.Background()
	db, err := database.Open(ctx, database.Options{URL: pgURL, MaxOpenConns: 4, MaxIdleConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := database.Migrate(ctx, db, nil); err != nil {
		t.Fatal(err)
	}
	rc, err := cache.NewRedis(ctx, redisURL, cache.RedisOptions{DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })

	timeout := 500 * time.Millisecond
	runner := health.NewRunner(nil, 0, 2*time.Second,
		health.DatabaseCheck(db, timeout, discard()),
		health.MigrationsCheck(db, timeout, discard()),
		health.CacheCheck(rc, timeout, discard()),
		health.DiskCheck(t.TempDir(), 0, 0, discard()),
	)
	h := health.NewHandler(runner, health.HandlerOptions{Tokens: []string{token}})
	e := engine(h)
	status := func() (int, statusBody) {
		req := httptest.NewRequest("GET", "/status", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		e.ServeHTTP(w, req)
		var b statusBody
		if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
			t.Fatalf("not JSON: %s", w.Body)
		}
		return w.Code, b
	}
	// eventually polls, since pools reconnect on their own schedule.
	eventually := func(want int, check, output string) (int, statusBody) {
		var code int
		var b statusBody
		for range 50 {
			if code, b = status(); code == want && (check == "" || b.Checks[check][0].Output == output) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		return code, b
	}
	expect := func(t *testing.T, b statusBody, failing ...string) {
		t.Helper()
		bad := map[string]bool{}
		for _, f := range failing {
			bad[f] = true
		}
		for name, res := range b.Checks {
			if want := map[bool]health.Status{true: health.Fail, false: health.Pass}[bad[name]]; res[0].Status != want {
				t.Errorf("%s: %s (%s), want %s", name, res[0].Status, res[0].Output, want)
			}
		}
	}

	steps := []struct {
		name    string
		breakIt func()
		fixIt   func()
		failing []string
		output  string // the first failing check's output, once the failure settles
	}{
		{"all up", func() {}, func() {}, nil, ""},
		{"PostgreSQL cut", pg.Cut, pg.Restore, []string{"database:responseTime", "database:migrations"}, "the database did not answer a query (details in the service log)"},
		{"Redis cut", rd.Cut, rd.Restore, []string{"cache:responseTime"}, "redis did not answer PING; reads fall back to the database"},
		{"PostgreSQL accepts but never answers", pg.Blackhole, pg.Restore, []string{"database:responseTime", "database:migrations"}, "no answer within 500ms"},
		{"Redis accepts but never answers", rd.Blackhole, rd.Restore, []string{"cache:responseTime"}, "no answer within 500ms"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			s.breakIt()
			want := 200
			if len(s.failing) > 0 {
				want = 500
			}
			start := time.Now()
			first := ""
			if len(s.failing) > 0 {
				first = s.failing[0]
			}
			code, b := eventually(want, first, s.output)
			if code != want {
				t.Fatalf("code %d, want %d: %+v", code, want, b)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("took %s", took) // guards against a hang, not a performance goal
			}
			expect(t, b, s.failing...)
			if first != "" && b.Checks[first][0].Output != s.output {
				t.Errorf("%s output %q, want %q", first, b.Checks[first][0].Output, s.output)
			}
			s.fixIt()
			if code, b := eventually(200, "", ""); code != 200 {
				t.Fatalf("did not recover: %d %+v", code, b)
			}
		})
	}
}

// TestSMTPCheck_RealMailpit: EHLO against a real Mailpit passes, a cut relay
// fails, and a relay that accepts but never greets fails at the timeout.
func TestSMTPCheck_RealMailpit(t *testing.T) {
	mp := servicetest.Mailpit(t)
	p := servicetest.NewProxy(t, net.JoinHostPort(mp.SMTPHost(), strconv.Itoa(mp.SMTPPort())))
	host, portStr, _ := net.SplitHostPort(p.Addr())
	port, _ := strconv.Atoi(portStr)
	c := health.SMTPCheck(host, port, nil, 300*time.Millisecond, discard())
	run := func() health.CheckResult {
		return health.NewRunner(nil, 0, 2*time.Second, c).Run(context.Background()).Checks["smtp:responseTime"][0]
	}
	if r := run(); r.Status != health.Pass || r.ObservedUnit != "ms" {
		t.Fatalf("relay up: %+v", r)
	}
	p.Cut()
	if r := run(); r.Status != health.Fail || !strings.Contains(r.Output, "did not complete EHLO") {
		t.Errorf("relay cut: %+v", r)
	}
	p.Blackhole()
	if r := run(); r.Status != health.Fail || r.Output != "no answer within 300ms" {
		t.Errorf("relay hung: %+v", r)
	}
	if n := mp.Count(t); n != 0 {
		t.Errorf("the check sent %d messages; it must only say EHLO", n)
	}
}

// TestSyslogCheck_RealListener: a TCP daemon that accepts passes; gone, it
// fails; records dropped since the last check turn a pass into a warning.
func TestSyslogCheck_RealListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	var dropped atomic.Uint64
	stats := func() health.SyslogStats { return health.SyslogStats{Dropped: dropped.Load()} }
	c := health.SyslogCheck(ln.Addr().String(), nil, stats, time.Second, discard())
	local := health.SyslogCheck("", nil, stats, time.Second, discard())
	run := func(c health.Check) health.CheckResult {
		return health.NewRunner(nil, 0, 2*time.Second, c).Run(context.Background()).Checks["syslog:connection"][0]
	}
	if r := run(c); r.Status != health.Pass {
		t.Fatalf("daemon up: %+v", r)
	}
	dropped.Store(7)
	if r := run(c); r.Status != health.Warn || r.Output != "7 records dropped since the last check" {
		t.Errorf("after drops: %+v", r)
	}
	if r := run(c); r.Status != health.Pass {
		t.Errorf("no new drops: %+v", r)
	}
	dropped.Store(9)
	if r := run(local); r.Status != health.Warn {
		t.Errorf("local socket, drops: %+v", r)
	}
	ln.Close()
	if r := run(c); r.Status != health.Fail || !strings.Contains(r.Output, "unreachable") {
		t.Errorf("daemon gone: %+v", r)
	}
	tlsCheck := health.SyslogCheck(ln.Addr().String(), &tls.Config{MinVersion: tls.VersionTLS12}, nil, time.Second, discard())
	if r := run(tlsCheck); r.Status != health.Fail {
		t.Errorf("TLS to a closed port: %+v", r)
	}
}

func TestDiskCheck_Thresholds(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name       string
		warn, fail int
		want       health.Status
	}{
		{"plenty free", 0, 0, health.Pass},
		{"below the warning threshold", 100, 0, health.Warn},
		{"below the failure threshold", 100, 100, health.Fail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := health.NewRunner(nil, 0, time.Second, health.DiskCheck(dir, tt.warn, tt.fail, discard())).Run(context.Background())
			if got := r.Checks["disk:free"][0]; got.Status != tt.want || got.ObservedUnit != "percent" {
				t.Errorf("%+v, want %s", got, tt.want)
			}
		})
	}
	r := health.NewRunner(nil, 0, time.Second, health.DiskCheck(filepath.Join(dir, "missing"), 10, 5, discard())).Run(context.Background())
	if r.Checks["disk:free"][0].Status != health.Fail {
		t.Errorf("missing directory: %+v", r.Checks["disk:free"][0])
	}
}

// TestSyslogCheck_TLS: a daemon with a trusted certificate passes; one the
// check does not trust fails, and the check hangs up instead of leaving the
// socket open (one leaked connection per status run otherwise).
func TestSyslogCheck_TLS(t *testing.T) {
	srv := httptest.NewTLSServer(nil) // only for its certificate
	srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	hungUp := make(chan error, 8)
	go func() {
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer raw.Close()
				_ = tls.Server(raw, srv.TLS).Handshake()
				// Wait for the check to close its end of the socket: the
				// raw read returns io.EOF then, or times out if it never does.
				_ = raw.SetReadDeadline(time.Now().Add(3 * time.Second))
				_, err := io.Copy(io.Discard, raw)
				hungUp <- err
			}()
		}
	}()
	run := func(c health.Check) health.CheckResult {
		return health.NewRunner(nil, 0, 2*time.Second, c).Run(context.Background()).Checks["syslog:connection"][0]
	}
	trusted := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs, ServerName: "127.0.0.1"}
	if r := run(health.SyslogCheck(ln.Addr().String(), trusted, nil, time.Second, discard())); r.Status != health.Pass {
		t.Errorf("trusted certificate: %+v", r)
	}
	<-hungUp
	untrusted := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: "127.0.0.1"} // system roots
	if r := run(health.SyslogCheck(ln.Addr().String(), untrusted, nil, time.Second, discard())); r.Status != health.Fail || !strings.Contains(r.Output, "unreachable") {
		t.Errorf("untrusted certificate: %+v", r)
	}
	if err := <-hungUp; errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("after a failed handshake the check left the connection open (server read: %v)", err)
	}
}

// TestSMTPCheck_ImplicitTLS: a relay on implicit TLS (port 465, where the
// e-mail sender starts with a handshake) passes when the check dials TLS
// too; a plain EHLO there gets no greeting and fails at the timeout.
func TestSMTPCheck_ImplicitTLS(t *testing.T) {
	srv := httptest.NewTLSServer(nil) // only for its certificate
	srv.Close()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv.TLS)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { // a minimal relay: greet, answer EHLO, then QUIT
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				r := bufio.NewReader(c)
				_, _ = io.WriteString(c, "220 relay ready\r\n")
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					switch strings.ToUpper(strings.Fields(line + " x")[0]) {
					case "EHLO":
						_, _ = io.WriteString(c, "250-relay\r\n250 8BITMIME\r\n")
					case "QUIT":
						_, _ = io.WriteString(c, "221 bye\r\n")
						return
					default:
						_, _ = io.WriteString(c, "502 no\r\n")
					}
				}
			}()
		}
	}()
	host, portStr, _ := net.SplitHostPort(ln.Addr().String())
	port, _ := strconv.Atoi(portStr)
	run := func(c health.Check) health.CheckResult {
		return health.NewRunner(nil, 0, 2*time.Second, c).Run(context.Background()).Checks["smtp:responseTime"][0]
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs, ServerName: host}
	if r := run(health.SMTPCheck(host, port, conf, time.Second, discard())); r.Status != health.Pass || r.ObservedUnit != "ms" {
		t.Errorf("implicit TLS relay, TLS check: %+v", r)
	}
	if r := run(health.SMTPCheck(host, port, nil, 300*time.Millisecond, discard())); r.Status != health.Fail {
		t.Errorf("implicit TLS relay, plain check: %+v", r)
	}
}

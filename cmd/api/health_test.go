package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/prodready/service/internal/cache"
	"github.com/prodready/service/internal/database"
	"github.com/prodready/service/internal/health"
	"github.com/prodready/service/internal/server"
	"github.com/prodready/service/internal/servicetest"
)

const healthToken = "0123456789abcdef-status"

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

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

// TestStatus_RealDependencies runs the status route, with the checks the
// database and cache packages provide, against real PostgreSQL and Redis,
// each behind a TCP proxy, and cuts them one at a time.
func TestStatus_RealDependencies(t *testing.T) {
	pgURL, pg := proxied(t, servicetest.PostgresURL(t))
	redisURL, rd := proxied(t, servicetest.URL(t, "TEST_REDIS_URL", "Redis"))
	ctx := context.Background()
	db, err := database.Open(ctx, database.Options{URL: pgURL, MaxOpenConns: 4, MaxIdleConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := database.Migrate(ctx, db, nil, resourceMigrations()...); err != nil {
		t.Fatal(err)
	}
	rc, err := cache.NewRedis(ctx, redisURL, cache.RedisOptions{DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })

	timeout := 500 * time.Millisecond
	runner := health.NewRunner(nil, 0, 2*time.Second,
		database.Check(db, timeout, discardLogger()),
		database.MigrationsCheck(db, timeout, discardLogger(), resourceMigrations()...),
		cache.Check(rc, timeout, discardLogger()),
		database.DiskCheck(t.TempDir(), 0, 0, discardLogger()),
	)
	h := health.NewHandler(runner, health.HandlerOptions{Tokens: []string{healthToken}})
	e := server.New(server.Options{Logger: discardLogger(), Health: h})
	status := func() (int, statusBody) {
		req := httptest.NewRequest("GET", "/status", nil)
		req.Header.Set("Authorization", "Bearer "+healthToken)
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

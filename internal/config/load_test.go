package config_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prodready/service/internal/config"
)

// env is a fake environment for Load.
func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// files serves YAML files and secret files from memory.
func files(m map[string]string) func(string) ([]byte, error) {
	return func(p string) ([]byte, error) {
		if s, ok := m[p]; ok {
			return []byte(s), nil
		}
		return nil, &os.PathError{Op: "open", Path: p, Err: os.ErrNotExist}
	}
}

func TestLoad_Precedence(t *testing.T) {
	fs := files(map[string]string{
		"app.yaml":   "environment: development\nlog:\n  level: warn\nhttp:\n  port: 9000\n",
		"/run/dburl": "postgres://u:s3cret@db:5432/notes\n",
		"none.yaml":  "environment: development\nemail:\n  recipients:\n",
	})
	tests := []struct {
		name       string
		path       string
		env        func(string) string
		key, want  string
		wantSource string
	}{
		{"default when nothing set", "", env("APP_ENVIRONMENT", "development"), "log.level", "info", "default"},
		{"file beats default", "app.yaml", env(), "log.level", "warn", "app.yaml:3"},
		{"environment beats file", "app.yaml", env("APP_LOG_LEVEL", "debug"), "log.level", "debug", "env APP_LOG_LEVEL"},
		{"platform PORT beats file", "app.yaml", env("PORT", "7000"), "http.port", "7000", "env PORT"},
		{"APP_ variable beats PORT", "app.yaml", env("PORT", "7000", "APP_HTTP_PORT", "7001"), "http.port", "7001", "env APP_HTTP_PORT"},
		{"DATABASE_URL works", "app.yaml", env("DATABASE_URL", "postgres://db/x"), "database.url", config.Redacted, "env DATABASE_URL"},
		{"REDIS_URL works", "app.yaml", env("REDIS_URL", "redis://r:6379/1"), "cache.redis_url", config.Redacted, "env REDIS_URL"},
		{"secret from _FILE", "app.yaml", env("APP_DATABASE_URL_FILE", "/run/dburl"), "database.url", config.Redacted, "env APP_DATABASE_URL_FILE"},
		{"a list key with nothing after it is empty", "none.yaml", env(), "email.recipients", "", "none.yaml:3"},
		{"empty variable counts as unset", "app.yaml", env("APP_LOG_LEVEL", ""), "log.level", "warn", "app.yaml:3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := config.Load(tt.path, tt.env, fs)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			e := entry(t, l, tt.key)
			if e.Value != tt.want || e.Source != tt.wantSource {
				t.Errorf("%s = %q from %q, want %q from %q", tt.key, e.Value, e.Source, tt.want, tt.wantSource)
			}
		})
	}
}

func TestLoad_SecretFromFileIsUsedButNeverShown(t *testing.T) {
	fs := files(map[string]string{"/run/dburl": "postgres://u:s3cret@db:5432/notes\n"})
	l, err := config.Load("", env("DATABASE_URL_FILE", "/run/dburl", "STATUS_TOKENS", "0123456789abcdef0123", "NEW_RELIC_LICENSE_KEY", testLicense), fs)
	if err != nil {
		t.Fatal(err)
	}
	if l.Database.URL != "postgres://u:s3cret@db:5432/notes" {
		t.Errorf("URL = %q: the trailing newline must be dropped and the value used", l.Database.URL)
	}
	var out strings.Builder
	if err := l.Print(&out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "s3cret") || !strings.Contains(out.String(), config.Redacted) {
		t.Errorf("config output leaks or hides the secret wrongly:\n%s", out.String())
	}
}

func TestLoad_ReportsEveryProblemAtOnce(t *testing.T) {
	bad := strings.Join([]string{
		"environment: development",
		"log:",
		"  level: verbose",        // line 3: enum
		"http:",                   //
		"  port: 70000",           // line 5: range
		"  read_timeout: soon",    // line 6: duration
		"  prot: 8080",            // line 7: unknown key
		"  max_body_bytes: lots",  // line 8: type
		"database:",               //
		"  migrate_on_start: yes", // yes is not a Go bool: line 10
		"notes: 5",                // line 11: a value where a section belongs
	}, "\n")
	_, err := config.Load("bad.yaml", env("APP_CACHE_TTL", "forever", "APP_NOTES_MAX_PAGE_SIZE", "0"),
		files(map[string]string{"bad.yaml": bad}), pages)
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("want config.Errors, got %v", err)
	}
	want := []string{
		`log.level (bad.yaml:3): "verbose" is not allowed`,
		`http.port (bad.yaml:5): 70000 is out of range: want 0 to 65535`,
		`http.read_timeout (bad.yaml:6): "soon" is not a duration`,
		`http.prot (bad.yaml:7): unknown key (did you mean http.port?)`,
		`http.max_body_bytes (bad.yaml:8): "lots" is not a whole number`,
		`database.migrate_on_start (bad.yaml:10): "yes" is not a boolean`,
		`notes (bad.yaml:11): expected a section of keys, got a value`,
		`cache.ttl (env APP_CACHE_TTL): "forever" is not a duration`,
		`notes.max_page_size (env APP_NOTES_MAX_PAGE_SIZE): 0 is out of range`,
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("missing problem %q in:\n%s", w, msg)
		}
	}
	if len(errs) != len(want) {
		t.Errorf("got %d problems, want %d:\n%s", len(errs), len(want), msg)
	}
}

func TestLoad_Rejects(t *testing.T) {
	tests := []struct {
		name     string
		yaml     string
		env      func(string) string
		wantPart string
	}{
		{"production without PostgreSQL", "", env(), "production needs a PostgreSQL database: set DATABASE_URL"},
		{"production with SQLite URL", "", env("DATABASE_URL", "sqlite:///tmp/x.db"), "production needs a PostgreSQL database"},
		{"unsupported database scheme", "environment: development", env("DATABASE_URL", "mysql://u:pw@h/db"), `database.url (env DATABASE_URL): unsupported scheme "mysql"`},
		{"unparsable URL hides its value", "environment: development", env("REDIS_URL", "redis://u:pw@%zz"), "is not a valid URL (value not shown"},
		{"idle above open", "environment: development\ndatabase:\n  max_idle_conns: 50", env(), "database.max_idle_conns (c.yaml:3): 50 is larger"},
		{"queue wait outlasts the write timeout", "environment: development\nhttp:\n  queue_timeout: 30s", env(), "http.queue_timeout (c.yaml:3): 30s is not shorter than http.write_timeout (30s)"},
		{"database wait outlasts the write timeout", "environment: development\nhttp:\n  write_timeout: 2s\n  queue_timeout: 1s", env(), "database.request_timeout (default): 6s is not shorter than http.write_timeout (2s)"},
		{"a status check outlasts the status deadline", "environment: development\nstatus:\n  deadline: 100ms", env(), "status.database_timeout (default): 1s is longer than status.deadline (100ms)"},
		{"the SMTP check's timeout counts only with e-mail on", "environment: development\nemail:\n  enabled: true\n  recipients: [ops@example.com]\nstatus:\n  deadline: 1500ms", env(), "status.smtp_timeout (default): 2s is longer than status.deadline (1.5s)"},
		{"workers out of range", "environment: development", env("APP_HTTP_WORKERS", "500"), "http.workers (env APP_HTTP_WORKERS)"},
		{"not YAML", "environment: [development", env(), "c.yaml: not valid YAML"},
		{"top level is a list", "- a\n- b", env(), "the file must be a mapping"},
		{"duplicate key", "environment: development\nenvironment: staging", env(), "environment (c.yaml:2): duplicate key"},
		{"mapping where a value belongs", "environment: development\nlog:\n  level:\n    x: 1", env(), "log.level (c.yaml:3): expected a single value, got a section of keys"},
		{"null number", "environment: development\nhttp:\n  port:", env(), "http.port (c.yaml:3): a value is required"},
		{"empty sqlite path", "environment: development\ndatabase:\n  sqlite_path: \"\"", env(), "database.sqlite_path (c.yaml:3): is empty"},
		{"secret and its file", "environment: development", env("DATABASE_URL", "postgres://x/y", "DATABASE_URL_FILE", "/nope"), "set either DATABASE_URL or DATABASE_URL_FILE, not both"},
		{"missing secret file", "environment: development", env("APP_CACHE_REDIS_URL_FILE", "/nope"), "cache.redis_url (env APP_CACHE_REDIS_URL_FILE): cannot read the secret file: file does not exist"},
		{"alias", "environment: development\nx: &a 1\nlog:\n  level: *a", env(), "aliases are not supported"},
		{"staging is held to production's rules", "environment: staging", env(), "database.url (default): staging needs a PostgreSQL database"},
		{"production without a status token", "", env("DATABASE_URL", "postgres://db/x"), "status.tokens (default): production needs a status token"},
		{"short token outside development", "environment: staging", env("DATABASE_URL", "postgres://db/x", "STATUS_TOKENS", "pw@short"), "a token is shorter than 16 characters (value not shown)"},
		{"e-mail without recipients", "environment: development\nemail:\n  enabled: true", env(), "email.recipients (default): e-mail is enabled but no recipient is set"},
		{"e-mail with a bad address", "environment: development\nemail:\n  enabled: true\n  recipients: [ops, pw@example.com]", env(), `email.recipients (c.yaml:4): "ops" is not an e-mail address`},
		{"e-mail user without password", "environment: development\nemail:\n  enabled: true\n  recipients: [a@b.c]\n  username: u", env(), "email.password (default): email.username is set but the password is empty"},
		{"e-mail without host", "environment: development\nemail:\n  enabled: true\n  recipients: [a@b.c]\n  smtp_host: \"\"\n  from: nobody", env(), "e-mail is enabled but no SMTP host"},
		{"bad sender", "environment: development\nemail:\n  enabled: true\n  recipients: [a@b.c]\n  from: nobody", env(), `email.from (c.yaml:5): "nobody" is not an e-mail address`},
		{"syslog without address", "environment: development\nlog:\n  syslog:\n    enabled: true\n    address: \"\"", env(), "log.syslog.address (c.yaml:5): syslog is enabled but no address"},
		{"disk thresholds inverted", "environment: development\nstatus:\n  disk_warn_percent: 5\n  disk_fail_percent: 10", env(), "status.disk_fail_percent (c.yaml:4): 10 is larger than status.disk_warn_percent"},
		{"list where a value belongs", "environment: development\nlog:\n  level: [a]", env(), "log.level (c.yaml:3): expected a single value, got a list"},
		{"mapping where a list belongs", "environment: development\nemail:\n  recipients: {a: b}", env(), "email.recipients (c.yaml:3): expected a list of values"},
		{"host with a port", "environment: development", env("APP_HTTP_HOST", "127.0.0.1:99"), `http.host (env APP_HTTP_HOST): "127.0.0.1:99" holds a port; set http.host to "127.0.0.1" and the port in http.port`},
		{"bracketed IPv6 host", "environment: development\nhttp:\n  host: \"[::1]\"", env(), `http.host (c.yaml:3): "[::1]": write the IPv6 address without brackets`},
		{"host that is no name", "environment: development", env("APP_HTTP_HOST", "local host"), `http.host (env APP_HTTP_HOST): "local host" is not an IP address or a host name`},
		{"newline in the service name", "environment: development", env("APP_SERVICE_NAME", "notes\nlevel=ERROR"), "service.name (env APP_SERVICE_NAME): contains the control character U+000A at character 6 (value not shown)"},
		{"NUL in a list item", "environment: development\nemail:\n  recipients: [\"a@b.c\\0\"]", env(), "email.recipients (c.yaml:3): contains the control character U+0000"},
		{"control character in a secret, not shown", "environment: development", env("DATABASE_URL", "postgres://u:pw@h/db\x1b"), "database.url (env DATABASE_URL): contains the control character U+001B at character 21 (value not shown)"},
		{"fail route in production", "debug:\n  fail_route: true", env("DATABASE_URL", "postgres://db/x", "STATUS_TOKENS", "0123456789abcdef0123"), "debug.fail_route (c.yaml:2): routes that fail on purpose are refused in production"},
		{"reserve not below the cap", "environment: development\nemail:\n  hourly_cap: 5\n  new_fingerprint_reserve: 5", env(), "email.new_fingerprint_reserve (c.yaml:4): 5 is not less than email.hourly_cap (5)"},
		{"digest more often than every 5s", "environment: development\nemail:\n  digest_interval: 1s", env(), "email.digest_interval (c.yaml:3)"},
		{"nested list item", "environment: development\nemail:\n  recipients: [[a]]", env(), "email.recipients (c.yaml:3): expected a list of values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load("c.yaml", tt.env, files(map[string]string{"c.yaml": tt.yaml}))
			if err == nil || !strings.Contains(err.Error(), tt.wantPart) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tt.wantPart)
			}
			if strings.Contains(err.Error(), "pw@") {
				t.Errorf("error leaks a credential: %v", err)
			}
		})
	}
}

// TestLoad_ProductionRulesReportedWithTheRest: what production and staging
// need is reported with every other problem, at once, so an operator fixes
// them in one go; it waits only when it cannot be judged (the file is
// unreadable, or environment itself is wrong), and a key wrong on its own
// is not reported twice.
func TestLoad_ProductionRulesReportedWithTheRest(t *testing.T) {
	const needs = "needs"
	tests := []struct {
		name string
		file string // bad.yaml; "-" for none at all
		env  []string
		want []string // each a substring of one problem, in order
	}{
		{"three mistakes under the production default", "log:\n  level: verbose\nhttp:\n  read_timeout: soon\n  prot: 1\n", nil,
			[]string{"http.read_timeout (bad.yaml:4)", "http.prot (bad.yaml:5)", "log.level (bad.yaml:2)",
				"database.url (default): production " + needs, "status.tokens (default): production " + needs, "newrelic.license_key (default): production " + needs}},
		{"staging with one bad variable", "", []string{"APP_ENVIRONMENT", "staging", "APP_LOG_FORMAT", "xml"},
			[]string{"log.format (env APP_LOG_FORMAT)", "database.url (default): staging " + needs, "status.tokens (default): staging " + needs, "newrelic.license_key (default): staging " + needs}},
		{"a wrong database URL is reported once", "", []string{"DATABASE_URL", "mysql://db/notes", "STATUS_TOKENS", "a-status-token-0123456789", "APP_NEWRELIC_ENABLED", "false"},
			[]string{"database.url (env DATABASE_URL)"}},
		{"environment itself wrong: what it needs is unknown", "environment: prod\nlog:\n  level: verbose\n", nil,
			[]string{"environment (bad.yaml:1)", "log.level (bad.yaml:3)"}},
		{"the file unreadable: its values are unknown", "-", nil, []string{"bad.yaml: cannot read the config file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := map[string]string{"bad.yaml": tt.file}
			if tt.file == "-" {
				fs = nil
			}
			_, err := config.Load("bad.yaml", env(tt.env...), files(fs))
			var errs config.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("want problems, got %v", err)
			}
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(errs), len(tt.want), err)
			}
			for i, w := range tt.want {
				if got := errs[i].String(); !strings.Contains(got, w) {
					t.Errorf("problem %d = %q, want it to contain %q", i+1, got, w)
				}
			}
		})
	}
}

func TestLoad_MissingFile(t *testing.T) {
	_, err := config.Load("nope.yaml", env(), files(nil))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml: cannot read the config file: file does not exist") {
		t.Fatalf("error = %v", err)
	}
}

func TestLoad_ValidProductionConfig(t *testing.T) {
	l, err := config.Load("", env("DATABASE_URL", "postgres://app:pw@db:5432/notes?sslmode=require", "STATUS_TOKENS", "0123456789abcdef0123,fedcba9876543210fedc",
		"NEW_RELIC_LICENSE_KEY", strings.Repeat("0", config.LicenseKeyLen)), files(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Status.Tokens) != 2 {
		t.Errorf("tokens = %d, want 2 from a comma-separated variable", len(l.Status.Tokens))
	}
	if l.Environment != config.Production || l.HTTP.ReadHeaderTimeout != 5*time.Second {
		t.Errorf("defaults not applied: %+v", l.Config)
	}
}

// TestDefaults_AreProductionLike pins the defaults the issue asks for, so a
// change to them is a deliberate one.
func TestDefaults_AreProductionLike(t *testing.T) {
	d := config.Default()
	checks := []struct {
		what string
		ok   bool
	}{
		{"environment is production", d.Environment == config.Production},
		{"JSON logs at info", d.Log.Format == "json" && d.Log.Level == "info"},
		{"every server timeout set", d.HTTP.ReadHeaderTimeout > 0 && d.HTTP.ReadTimeout > 0 && d.HTTP.WriteTimeout > 0 && d.HTTP.IdleTimeout > 0},
		{"a request body limit", d.HTTP.MaxBodyBytes > 0 && d.HTTP.MaxBodyBytes <= 10<<20},
		{"graceful shutdown below Kubernetes' 30s", d.HTTP.ShutdownTimeout > 0 && d.HTTP.ShutdownTimeout < 30*time.Second},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("default not production-like: %s", c.what)
		}
	}
}

func TestEntries_LogValueRedacts(t *testing.T) {
	l, err := config.Load("", env("APP_ENVIRONMENT", "development", "REDIS_URL", "redis://:hunter2@r:6379/0"), files(nil))
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprint(l.LogValue()); strings.Contains(s, "hunter2") || !strings.Contains(s, config.Redacted) {
		t.Errorf("log value leaks or lacks redaction: %s", s)
	}
}

func entry(t *testing.T, l *config.Loaded, key string) config.Entry {
	t.Helper()
	for _, e := range l.Entries() {
		if e.Key == key {
			return e
		}
	}
	t.Fatalf("no key %s", key)
	return config.Entry{}
}

// repoFile reads a file at the repository root.
func repoFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

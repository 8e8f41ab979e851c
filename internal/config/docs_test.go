package config_test

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/resources"
)

// sections are the configuration sections of the resources the service
// serves (internal/resources), which the documents list with the service's
// own keys.
var sections = resources.All().Sections()

// TestEveryKeyIsDocumented fails when a config field, the service's or a
// resource section's, lacks an environment variable, an entry in
// config.yaml or a row in docs/CONFIGURATION.md, or when either document
// names a key that does not exist.
func TestEveryKeyIsDocumented(t *testing.T) {
	yamlDoc := repoFile(t, "config.yaml")
	docs := string(repoFile(t, "docs/CONFIGURATION.md"))

	// config.yaml must set every key to its default: loading it changes no value
	// and every key's source is the file.
	l, err := config.Load("config.yaml", func(k string) string {
		switch k { // production needs these; the file keeps them empty on purpose
		case "DATABASE_URL":
			return "postgres://localhost/x"
		case "STATUS_TOKENS":
			return "0123456789abcdef0123"
		case "NEW_RELIC_LICENSE_KEY":
			return strings.Repeat("x", config.LicenseKeyLen)
		}
		return ""
	}, func(string) ([]byte, error) { return yamlDoc, nil }, sections...)
	if err != nil {
		t.Fatalf("config.yaml does not load: %v", err)
	}
	def := config.Default() // a section reads as its defaults
	rowRe := regexp.MustCompile("(?m)^\\| `([a-z_.]+)` \\| `([A-Z_]+)`")
	rows := map[string]string{}
	for _, m := range rowRe.FindAllStringSubmatch(docs, -1) {
		rows[m[1]] = m[2]
	}
	envSeen := map[string]string{}
	fromEnv := map[string]bool{"database.url": true, "status.tokens": true, "newrelic.license_key": true}
	for _, f := range config.Fields(sections...) {
		if f.Env != config.EnvName(f.Key) || !strings.HasPrefix(f.Env, "APP_") {
			t.Errorf("%s: variable %s does not follow the rule", f.Key, f.Env)
		}
		if other, dup := envSeen[f.Env]; dup {
			t.Errorf("%s and %s share the variable %s", f.Key, other, f.Env)
		}
		envSeen[f.Env] = f.Key
		if src := l.Sources[f.Key]; !strings.HasPrefix(src, "config.yaml:") && !fromEnv[f.Key] {
			t.Errorf("%s: missing from config.yaml (source %s)", f.Key, src)
		}
		if f.Get(&l.Config) != f.Get(&def) && !fromEnv[f.Key] {
			t.Errorf("%s: config.yaml says %q, the built-in default is %q", f.Key, f.Get(&l.Config), f.Get(&def))
		}
		if v, ok := rows[f.Key]; !ok {
			t.Errorf("%s: no row in docs/CONFIGURATION.md", f.Key)
		} else if v != f.Env {
			t.Errorf("%s: docs/CONFIGURATION.md names %s, want %s", f.Key, v, f.Env)
		}
		delete(rows, f.Key)
	}
	for k := range rows {
		t.Errorf("docs/CONFIGURATION.md documents %s, which is not a key", k)
	}
}

// TestEveryKeyHasAWorkingVariable sets each key through its variable and
// checks the value arrives, so the rule is not just documented but wired.
func TestEveryKeyHasAWorkingVariable(t *testing.T) {
	samples := map[string]string{}
	for _, f := range config.Fields(sections...) {
		def := config.Default()
		v := f.Get(&def)
		switch {
		case len(f.Enum) > 0:
			v = f.Enum[len(f.Enum)-1]
		case strings.HasSuffix(v, "s") || strings.HasSuffix(v, "m0s"): // durations
			v = "7s"
		case v == "true" || v == "false":
			v = map[string]string{"true": "false", "false": "true"}[v]
		case regexp.MustCompile(`^\d+$`).MatchString(v):
			n, _ := strconv.Atoi(v)
			v = strconv.Itoa(n + 1) // one above the default keeps rules spanning keys valid
		case f.Key == "database.url":
			v = "postgres://db/notes"
		case f.Key == "cache.redis_url":
			v = "redis://cache:6379/0"
		case f.Key == "newrelic.license_key":
			v = strings.Repeat("k", config.LicenseKeyLen)
		case f.Key == "newrelic.labels":
			v = "team:notes"
		case f.Key == "newrelic.collector_host":
			v = "collector.example:443"
		default:
			v = "changed"
		}
		samples[f.Key] = v
		// What the other keys need for the configuration to be valid whatever
		// this key is set to (production needs PostgreSQL and a token, e-mail a
		// recipient, a status check's timeout a deadline as long).
		base := map[string]string{
			"APP_ENVIRONMENT": "development", "DATABASE_URL": "postgres://db/x",
			"STATUS_TOKENS": "0123456789abcdef0123", "APP_EMAIL_RECIPIENTS": "ops@example.com",
			"NEW_RELIC_LICENSE_KEY": strings.Repeat("n", config.LicenseKeyLen),
			"APP_STATUS_DEADLINE":   "10s", // each check's timeout must fit in it
		}
		l, err := config.Load("", func(k string) string {
			if k == f.Env {
				return v
			}
			return base[k]
		}, os.ReadFile, sections...)
		if err != nil {
			t.Errorf("%s=%s: %v", f.Env, v, err)
			continue
		}
		if got := f.Get(&l.Config); got != v {
			t.Errorf("%s=%s gave %s=%q", f.Env, v, f.Key, got)
		}
		if l.Sources[f.Key] != "env "+f.Env {
			t.Errorf("%s: source %q", f.Key, l.Sources[f.Key])
		}
	}
}

package config_test

import (
	"errors"
	"testing"

	"github.com/prodready/service/internal/config"
)

// FuzzLoad feeds arbitrary YAML and one arbitrary variable to the loader: it
// must never panic, and must return either a valid configuration or
// config.Errors whose every problem names where it came from.
func FuzzLoad(f *testing.F) {
	f.Add("environment: development\nlog:\n  level: debug\n", "APP_HTTP_PORT", "8081")
	f.Add("http:\n  port: 99999\n  read_timeout: x\n", "APP_CACHE_TTL", "1h")
	f.Add("notes: [1, 2]\n", "DATABASE_URL", "postgres://u:p@h/db")
	f.Add("a: &x {b: *x}\n", "PORT", "-1")
	f.Add("", "APP_ENVIRONMENT", "staging")
	f.Add("log: {level: warn, format: text}\ncache:\n  ttl: 0s\n", "REDIS_URL", "%%%")
	f.Fuzz(func(t *testing.T, doc, name, value string) {
		l, err := config.Load("f.yaml", func(k string) string {
			if k == name {
				return value
			}
			return ""
		}, func(string) ([]byte, error) { return []byte(doc), nil })
		if err == nil {
			if l == nil {
				t.Fatal("nil config without error")
			}
			return
		}
		var errs config.Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("error is not config.Errors: %v", err)
		}
		for _, p := range errs {
			if p.Source == "" || p.Message == "" {
				t.Fatalf("problem without source or message: %+v", p)
			}
		}
	})
}

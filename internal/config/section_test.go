package config_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prodready/service/internal/config"
)

// The loader knows no resource, so its tests declare sections of their
// own: pages is named and bounded as the notes section's page size
// (internal/notes declares the real one, with its rule), webhook has a
// secret, a duration and a rule that spans its keys.
type pageConfig struct {
	MaxPageSize int `yaml:"max_page_size" min:"1" max:"1000"`
}

var pages = config.Section[pageConfig]{Name: "notes", Default: pageConfig{MaxPageSize: 100}}

type webhookConfig struct {
	URL     string        `yaml:"url" secret:"true"`
	Timeout time.Duration `yaml:"timeout" min:"1ms" max:"1m"`
	Retries int           `yaml:"retries" min:"0" max:"10"`
}

func (c webhookConfig) Validate() []config.Problem {
	if total := time.Duration(c.Retries+1) * c.Timeout; total > time.Minute {
		return []config.Problem{{Key: "retries", Message: fmt.Sprintf("%d retries of webhook.timeout (%s) outlast a minute", c.Retries, c.Timeout)}}
	}
	return nil
}

var webhook = config.Section[webhookConfig]{Name: "webhook", Default: webhookConfig{Timeout: 2 * time.Second, Retries: 3}}

// TestSection_LoadedLikeEveryKey: a resource's section takes its defaults,
// the file (with its line) and its APP_ variables over the file (and _FILE
// for a secret);
// `api config` and the start-up log show it with the secret redacted; a
// Config loaded without it reads its defaults.
func TestSection_LoadedLikeEveryKey(t *testing.T) {
	fs := files(map[string]string{
		"app.yaml":  "environment: development\nwebhook:\n  timeout: 5s\nnotes:\n  max_page_size: 50\n",
		"/run/hook": "https://hooks.example/t0ps3cret\n",
	})
	l, err := config.Load("app.yaml", env("APP_NOTES_MAX_PAGE_SIZE", "60", "APP_WEBHOOK_URL_FILE", "/run/hook"), fs, pages, webhook)
	if err != nil {
		t.Fatal(err)
	}
	if got := pages.From(l.Config); got != (pageConfig{MaxPageSize: 60}) {
		t.Errorf("notes section %+v", got)
	}
	if got := webhook.From(l.Config); got.URL != "https://hooks.example/t0ps3cret" || got.Timeout != 5*time.Second || got.Retries != 3 {
		t.Errorf("webhook section %+v", got)
	}
	if secrets := l.SecretValues(); !slices.Contains(secrets, "https://hooks.example/t0ps3cret") {
		t.Errorf("SecretValues() = %q; want the section's secret among them, for the alert mails to scrub", secrets)
	}
	for key, want := range map[string]config.Entry{
		"notes.max_page_size": {Value: "60", Source: "env APP_NOTES_MAX_PAGE_SIZE", Env: "APP_NOTES_MAX_PAGE_SIZE"},
		"webhook.url":         {Value: config.Redacted, Source: "env APP_WEBHOOK_URL_FILE", Env: "APP_WEBHOOK_URL"},
		"webhook.timeout":     {Value: "5s", Source: "app.yaml:3", Env: "APP_WEBHOOK_TIMEOUT"},
		"webhook.retries":     {Value: "3", Source: "default", Env: "APP_WEBHOOK_RETRIES"},
	} {
		want.Key = key
		if got := entry(t, l, key); got != want {
			t.Errorf("%s: %+v, want %+v", key, got, want)
		}
	}
	var out strings.Builder
	if err := l.Print(&out); err != nil {
		t.Fatal(err)
	}
	logged := fmt.Sprint(l.LogValue())
	for where, text := range map[string]string{"api config": out.String(), "the start-up log": logged} {
		if strings.Contains(text, "t0ps3cret") || !strings.Contains(text, "webhook.url") {
			t.Errorf("%s leaks the section's secret or lacks its key:\n%s", where, text)
		}
	}
	if got := webhook.From(config.Default()); got != webhook.Default {
		t.Errorf("a configuration without the section reads %+v, want its defaults", got)
	}
}

// TestSection_ProblemsWithEveryOther: the section's keys are checked like
// the service's (type, range, unknown key with a suggestion, a value where
// the section belongs) and its own rule runs once its keys are valid; every
// problem names its key and where its value came from, all in one error.
func TestSection_ProblemsWithEveryOther(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  func(string) string
		want []string
	}{
		{"with the service's problems", "environment: development\nlog:\n  level: loud\nwebhook:\n  timeout: never\n  retires: 2\n",
			env("APP_WEBHOOK_RETRIES", "11", "APP_HTTP_PORT", "x"), []string{
				`log.level (c.yaml:3): "loud" is not allowed`,
				`webhook.timeout (c.yaml:5): "never" is not a duration`,
				`webhook.retires (c.yaml:6): unknown key (did you mean webhook.retries?)`,
				`http.port (env APP_HTTP_PORT): "x" is not a whole number`,
				`webhook.retries (env APP_WEBHOOK_RETRIES): 11 is out of range: want 0 to 10`,
			}},
		{"the section's own rule", "environment: development\nwebhook:\n  timeout: 30s\n", env("APP_WEBHOOK_RETRIES", "2"), []string{
			`webhook.retries (env APP_WEBHOOK_RETRIES): 2 retries of webhook.timeout (30s) outlast a minute`,
		}},
		{"its rule waits for its keys", "environment: development\nwebhook:\n  timeout: 30s\n  retries: 11\n", env(), []string{
			`webhook.retries (c.yaml:4): 11 is out of range: want 0 to 10`,
		}},
		{"a value where the section belongs", "environment: development\nwebhook: on\n", env(), []string{
			`webhook (c.yaml:2): expected a section of keys, got a value`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load("c.yaml", tt.env, files(map[string]string{"c.yaml": tt.yaml}), pages, webhook)
			var errs config.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("want config.Errors, got %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing problem %q in:\n%v", w, err)
				}
			}
			if len(errs) != len(tt.want) {
				t.Errorf("%d problems, want %d:\n%v", len(errs), len(tt.want), err)
			}
		})
	}
}

// TestSection_UnknownWithoutIt: a file with a section the binary does not
// serve is refused, as any unknown key is.
func TestSection_UnknownWithoutIt(t *testing.T) {
	_, err := config.Load("c.yaml", env(), files(map[string]string{"c.yaml": "environment: development\nwebhook:\n  timeout: 5s\n"}))
	if err == nil || !strings.Contains(err.Error(), "webhook (c.yaml:2): unknown key") {
		t.Fatalf("error = %v, want the webhook section refused as an unknown key", err)
	}
}

package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/prodready/service/internal/config"
)

var testLicense = strings.Repeat("a", config.LicenseKeyLen)

// TestLoad_NewRelic covers the monitoring keys as an operator sets them: the
// agent's own variables, the _FILE form of the secret, the production rule
// and its explicit opt-out, and each shape check naming its key.
func TestLoad_NewRelic(t *testing.T) {
	prod := []string{"DATABASE_URL", "postgres://db/x", "STATUS_TOKENS", "0123456789abcdef0123"}
	with := func(kv ...string) func(string) string { return env(append(append([]string(nil), prod...), kv...)...) }
	fs := files(map[string]string{"/run/nr": testLicense + "\n", "off.yaml": "newrelic:\n  enabled: false\n"})
	tests := []struct {
		name    string
		file    string
		getenv  func(string) string
		wantErr string // "" means valid
		check   func(t *testing.T, n config.NewRelic, sources map[string]string)
	}{
		{name: "the agent's own variables", getenv: with("NEW_RELIC_LICENSE_KEY", testLicense, "NEW_RELIC_APP_NAME", "notes-prod"),
			check: func(t *testing.T, n config.NewRelic, src map[string]string) {
				if !n.On() || n.AppName != "notes-prod" || src["newrelic.license_key"] != "env NEW_RELIC_LICENSE_KEY" {
					t.Errorf("got %+v, sources %v", n, src["newrelic.license_key"])
				}
			}},
		{name: "the APP_ variable wins over the agent's", getenv: with("NEW_RELIC_APP_NAME", "a", "APP_NEWRELIC_APP_NAME", "b", "NEW_RELIC_LICENSE_KEY", testLicense),
			check: func(t *testing.T, n config.NewRelic, _ map[string]string) {
				if n.AppName != "b" {
					t.Errorf("app name %q, want b", n.AppName)
				}
			}},
		{name: "license key from a file", getenv: with("NEW_RELIC_LICENSE_KEY_FILE", "/run/nr"),
			check: func(t *testing.T, n config.NewRelic, src map[string]string) {
				if n.LicenseKey != testLicense || src["newrelic.license_key"] != "env NEW_RELIC_LICENSE_KEY_FILE" {
					t.Errorf("license from file: %q from %s", n.LicenseKey, src["newrelic.license_key"])
				}
			}},
		{name: "labels as a list", getenv: with("NEW_RELIC_LICENSE_KEY", testLicense, "APP_NEWRELIC_LABELS", "team:notes, tier:api"),
			check: func(t *testing.T, n config.NewRelic, _ map[string]string) {
				if m := n.LabelMap(); m["team"] != "notes" || m["tier"] != "api" || len(m) != 2 {
					t.Errorf("labels %v", m)
				}
			}},
		{name: "production refuses missing monitoring", getenv: with(),
			wantErr: "newrelic.license_key (default): production needs application monitoring: set NEW_RELIC_LICENSE_KEY (or APP_NEWRELIC_LICENSE_KEY_FILE), or opt out on purpose with APP_NEWRELIC_ENABLED=false"},
		{name: "staging too", getenv: with("APP_ENVIRONMENT", "staging"), wantErr: "staging needs application monitoring"},
		{name: "an explicit opt-out in the environment", getenv: with("APP_NEWRELIC_ENABLED", "false"),
			check: func(t *testing.T, n config.NewRelic, _ map[string]string) {
				if n.On() {
					t.Error("the agent is on after an opt-out")
				}
			}},
		{name: "an explicit opt-out in the file", file: "off.yaml", getenv: with(),
			check: func(t *testing.T, n config.NewRelic, src map[string]string) {
				if n.On() || src["newrelic.enabled"] != "off.yaml:2" {
					t.Errorf("opt-out from %s", src["newrelic.enabled"])
				}
			}},
		{name: "development runs without a key", getenv: env("APP_ENVIRONMENT", "development"),
			check: func(t *testing.T, n config.NewRelic, _ map[string]string) {
				if n.On() || !n.Enabled {
					t.Errorf("development without a key: %+v", n)
				}
			}},
		{name: "a short key is refused without showing it", getenv: with("NEW_RELIC_LICENSE_KEY", "s3cr3t-short"),
			wantErr: "newrelic.license_key (env NEW_RELIC_LICENSE_KEY): is 12 characters long, a New Relic license key has 40 (value not shown)"},
		{name: "a label without a value", getenv: with("NEW_RELIC_LICENSE_KEY", testLicense, "APP_NEWRELIC_LABELS", "team"),
			wantErr: `newrelic.labels (env APP_NEWRELIC_LABELS): "team" is not a key:value pair`},
		{name: "a collector host with a scheme", getenv: with("NEW_RELIC_LICENSE_KEY", testLicense, "APP_NEWRELIC_COLLECTOR_HOST", "https://collector.example"),
			wantErr: `newrelic.collector_host (env APP_NEWRELIC_COLLECTOR_HOST): "https://collector.example" is not host or host:port`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := config.Load(tt.file, tt.getenv, fs)
			if tt.wantErr != "" {
				var errs config.Errors
				if !errors.As(err, &errs) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v\nwant it to contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "s3cr3t") {
					t.Errorf("the error repeats the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, l.NewRelic, l.Sources)
			if e := entry(t, l, "newrelic.license_key"); l.NewRelic.LicenseKey != "" && e.Value != config.Redacted {
				t.Errorf("api config shows the license key as %q", e.Value)
			}
		})
	}
}

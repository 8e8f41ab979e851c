package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// TestHealthcheck_TokenStaysHome: the status token is sent to this
// instance (loopback), never to another host named by --url.
func TestHealthcheck_TokenStaysHome(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization")
		_, _ = io.WriteString(w, `{"status":"pass"}`)
	}))
	defer srv.Close()
	env := map[string]string{"APP_ENVIRONMENT": "development", "STATUS_TOKENS": testToken}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		name, url string
		wantToken bool
	}{
		{"loopback address", srv.URL, true},
		{"localhost", strings.Replace(srv.URL, "127.0.0.1", "localhost", 1), true},
		{"another host", strings.Replace(srv.URL, "127.0.0.1", "127.0.0.1.nip.invalid", 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got = ""
			var out bytes.Buffer
			err := run(context.Background(), []string{"healthcheck", "--url", tt.url, "--timeout", "2s"}, getenv, &out, io.Discard)
			if tt.wantToken && (err != nil || got != "Bearer "+testToken) {
				t.Errorf("err %v, Authorization %q", err, got)
			}
			if !tt.wantToken && got != "" {
				t.Errorf("the token went to %s", tt.url)
			}
		})
	}
}

// TestHealthcheck_SaysWhatFailed: the one line an operator reads from the
// healthcheck command (exit 1 unless 200) for each way the answer or the
// command line can go wrong.
func TestHealthcheck_SaysWhatFailed(t *testing.T) {
	answer := map[string]func(http.ResponseWriter){
		"/degraded": func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"status":"fail","checks":{"redis:ping":[{"status":"fail"}],"bun:ping":[{"status":"pass"}],"smtp:connect":[{"status":"warn"}]}}`)
		},
		"/refused": func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"status":"fail","output":"no status token configured"}`)
		},
		"/plain": func(w http.ResponseWriter) { _, _ = io.WriteString(w, "ok") },
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { answer[r.URL.Path](w) }))
	defer srv.Close()
	getenv := func(k string) string { return map[string]string{"APP_ENVIRONMENT": "development"}[k] }
	for _, tt := range []struct {
		name string
		args []string
		want string // the error, or the printed line when ok
		ok   bool
	}{
		{"failing checks are named", []string{"--url", srv.URL + "/degraded"}, "answered 503 fail: redis:ping=fail, smtp:connect=warn", false},
		{"no checks: the output", []string{"--url", srv.URL + "/refused"}, "answered 503 fail: no status token configured", false},
		{"200 without a status", []string{"--url", srv.URL + "/plain"}, "answered 200 ok", true},
		{"unknown flag", []string{"--verbose"}, "healthcheck: flag provided but not defined: -verbose", false},
		{"bad url", []string{"--url", "http://[::1"}, "healthcheck: bad --url:", false},
		{"unreadable config file", []string{"--config", filepath.Join(t.TempDir(), "missing.yaml")}, "healthcheck: ", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), append([]string{"healthcheck", "--timeout", "2s"}, tt.args...), getenv, &out, io.Discard)
			switch {
			case tt.ok && (err != nil || !strings.Contains(out.String(), tt.want)):
				t.Errorf("%q %v, want a line with %q", out.String(), err, tt.want)
			case !tt.ok && (err == nil || !strings.Contains(err.Error(), tt.want) || exitCode(err) != exitFailure):
				t.Errorf("error %v (exit %d), want one with %q and exit 1", err, exitCode(err), tt.want)
			}
		})
	}
}

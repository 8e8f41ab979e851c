package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
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

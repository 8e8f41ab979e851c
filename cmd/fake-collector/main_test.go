package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/newrelic/go-agent/v3/newrelic"

	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/monitoring"
	"github.com/prodready/service/internal/servicetest"
)

// TestRun_PrintsWhatTheAgentSends runs the standalone collector as `make
// run-collector` does and connects a real agent to it with the variables it
// prints, then sends a transaction that fails and logs: each call is a line
// saying what it carried (the error, the log record and its trace).
func TestRun_PrintsWhatTheAgentSends(t *testing.T) {
	out := &servicetest.LogBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	dir := t.TempDir()
	go func() { done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--dir", dir}, out) }()
	var host string
	for deadline := time.Now().Add(5 * time.Second); host == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, rest, ok := strings.Cut(out.String(), "APP_NEWRELIC_COLLECTOR_HOST="); ok {
			host, _, _ = strings.Cut(rest, " ")
		}
	}
	if host == "" {
		t.Fatalf("no collector host printed:\n%s", out.String())
	}
	a, err := monitoring.New(monitoring.Options{Config: config.NewRelic{Enabled: true, LicenseKey: servicetest.LicenseKey, AppName: "demo",
		CollectorHost: host, CollectorCAFile: dir + "/collector-ca.pem", LogForwarding: true, DistributedTracing: true}, ServiceName: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Application().WaitForConnection(10 * time.Second); err != nil {
		t.Fatalf("agent did not connect: %v\n%s", err, out.String())
	}
	txn := a.Application().StartTransaction("demo-request")
	txn.NoticeError(errors.New("the demo failed"))
	slog.New(a.LogHandler(slog.NewTextHandler(io.Discard, nil))).InfoContext(newrelic.NewContext(context.Background(), txn), "demo line") //nolint:sloglint // a handler that enables records: slog.DiscardHandler enables none, and the agent forwards only what is enabled
	txn.End()
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	a.Shutdown(sctx)
	scancel()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"preconnect", "connect", "app_name=[demo]", "metric_data",
		"error_event_data", ": the demo failed", "log_event_data", `INFO "demo line" trace.id=`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRun_RefusesANonLoopbackAddress(t *testing.T) {
	if err := run(context.Background(), []string{"--addr", "0.0.0.0:8443"}, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("error %v", err)
	}
}

// TestRun_CommandLineMistakes: an unknown flag, and a --dir that cannot be
// created, stop it with the reason.
func TestRun_CommandLineMistakes(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--verbose"}, "flag provided but not defined: -verbose"},
		{[]string{"--addr", "127.0.0.1:0", "--dir", filepath.Join(file, "sub")}, "not a directory"},
	} {
		if err := run(context.Background(), tt.args, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want an error with %q", tt.args, err, tt.want)
		}
	}
}

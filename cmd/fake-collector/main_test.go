package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/monitoring"
	"github.com/prodready/service/internal/servicetest"
)

// TestRun_PrintsWhatTheAgentSends runs the standalone collector as `make
// run-collector` does and connects a real agent to it with the variables it
// prints.
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
		CollectorHost: host, CollectorCAFile: dir + "/collector-ca.pem"}, ServiceName: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Application().WaitForConnection(10 * time.Second); err != nil {
		t.Fatalf("agent did not connect: %v\n%s", err, out.String())
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	a.Shutdown(sctx)
	scancel()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"preconnect", "connect", "app_name=[demo]", "metric_data"} {
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

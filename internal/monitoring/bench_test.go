package monitoring_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/monitoring"
	"github.com/prodready/service/internal/servicetest"
)

// TestAgent_ACollectorInTroubleNeverFailsARequest: with the collector
// answering 503, or not answering at all, requests are still answered, and
// shutdown still returns within its budget.
func TestAgent_ACollectorInTroubleNeverFailsARequest(t *testing.T) {
	for _, mode := range []string{"503", "hung"} {
		t.Run(mode, func(t *testing.T) {
			col := servicetest.StartCollector(t)
			a := startAgent(t, testConfig(col), nil)
			connected(t, a)
			if mode == "503" {
				col.Fail(http.StatusServiceUnavailable)
			} else {
				col.Hang(true)
			}
			w := newWorld(t, a, openSQLite(t), nil)
			for range 20 {
				if got := w.get(t, "/things/1"); got != 200 {
					t.Fatalf("GET with the collector %s: %d", mode, got)
				}
			}
			col.WaitFor(t, "a harvest attempt", 10*time.Second, func(c *servicetest.Collector) bool {
				return len(c.Calls()) > 2 // preconnect, connect, then a data method
			})
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			a.Shutdown(ctx) // returns: the budget bounds the final harvest
		})
	}
}

// BenchmarkRequestCost measures one instrumented request (a SQLite query
// and a log line in a transaction) with the agent off, on against a healthy
// collector, on against one answering 503 and on against one that never
// answers. The four alternate request by request in one run, so machine
// noise hits them alike; the ratios to "off" are what docs/PERFORMANCE.md
// records.
func BenchmarkRequestCost(b *testing.B) {
	modes := []string{"off", "on", "503", "hung"}
	worlds := map[string]*world{}
	for _, m := range modes {
		var cfg config.NewRelic
		if m != "off" {
			col := servicetest.StartCollector(b)
			cfg = testConfig(col)
			switch m {
			case "503":
				col.Fail(http.StatusServiceUnavailable)
			case "hung":
				col.Hang(true)
			}
		}
		a, err := monitoring.New(monitoring.Options{Config: cfg, ServiceName: "bench", MetricsInterval: time.Hour, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		if a.On() {
			if err := a.Application().WaitForConnection(10 * time.Second); err != nil {
				b.Fatal(err)
			}
		}
		b.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			a.Shutdown(ctx)
		})
		worlds[m] = newWorld(b, a, openSQLite(b), nil)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	spent := map[string]time.Duration{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, m := range modes {
			start := time.Now()
			resp, err := client.Get(worlds[m].srv.URL + "/things/1")
			if err != nil || resp.StatusCode != 200 {
				b.Fatalf("%s: %v", m, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body) // drained, so the connection is reused
			resp.Body.Close()
			spent[m] += time.Since(start)
		}
	}
	b.StopTimer()
	for _, m := range modes {
		b.ReportMetric(float64(spent[m].Nanoseconds())/float64(b.N), m+"-ns/req")
	}
	for _, m := range modes[1:] {
		b.ReportMetric(float64(spent[m])/float64(spent["off"]), m+"/off")
	}
}

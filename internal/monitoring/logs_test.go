package monitoring_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/newrelic/go-agent/v3/newrelic"

	"github.com/prodready/service/internal/logging"
	"github.com/prodready/service/internal/servicetest"
)

// TestLogHandler_DerivedLoggersKeepLogsInContext: a logger derived with
// With (as a package's or a component's logger is) still puts trace.id and
// span.id on its local lines, beside its own attributes, and still
// forwards. (Under WithGroup they land inside the group, as slog nests
// every attribute added after it.)
func TestLogHandler_DerivedLoggersKeepLogsInContext(t *testing.T) {
	col := servicetest.StartCollector(t)
	a := startAgent(t, testConfig(col), nil)
	connected(t, a)
	logs := &servicetest.LogBuffer{}
	base, _, err := logging.New(logs, logging.Options{Level: "info", Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(a.LogHandler(base.Handler())).With("component", "store").WithGroup("")
	txn := a.Application().StartTransaction("derived")
	ctx := newrelic.NewContext(context.Background(), txn)
	logger.InfoContext(ctx, "derived logger line", "name", "get")
	txn.End()

	local := localLine(t, logs, "derived logger line")
	if local["component"] != "store" || local["name"] != "get" || local["trace.id"] == nil || local["span.id"] == nil {
		t.Errorf("local line %v: want component, name, trace.id and span.id", local)
	}
	col.WaitFor(t, "the forwarded line", 10*time.Second, func(c *servicetest.Collector) bool {
		for _, l := range c.Logs() {
			if l["message"] == "derived logger line" {
				return true
			}
		}
		return false
	})
}

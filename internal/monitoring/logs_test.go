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
// With or WithGroup (as a package's or a component's logger is) still puts
// trace.id and span.id at the top of its local lines, where a search by
// trace id finds them, beside its own attributes (inside the group where
// there is one), and still forwards.
func TestLogHandler_DerivedLoggersKeepLogsInContext(t *testing.T) {
	col := servicetest.StartCollector(t)
	a := startAgent(t, testConfig(col), nil)
	connected(t, a)
	for _, tc := range []struct {
		name   string
		derive func(*slog.Logger) *slog.Logger
		// where the line's own attributes land: "" at the top, else a group
		group string
	}{
		{"With", func(l *slog.Logger) *slog.Logger { return l.With("component", "store").WithGroup("") }, ""},
		{"WithGroup", func(l *slog.Logger) *slog.Logger { return l.With("component", "store").WithGroup("req") }, "req"},
		{"WithGroup, then With", func(l *slog.Logger) *slog.Logger {
			return l.With("component", "store").WithGroup("req").With("route", "/v1/notes/:id")
		}, "req"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &servicetest.LogBuffer{}
			base, _, err := logging.New(logs, logging.Options{Level: "info", Format: "json"})
			if err != nil {
				t.Fatal(err)
			}
			logger := tc.derive(slog.New(a.LogHandler(base.Handler())))
			txn := a.Application().StartTransaction("derived")
			ctx := newrelic.NewContext(context.Background(), txn)
			msg := "derived logger line " + tc.name
			logger.InfoContext(ctx, msg, "name", "get")
			txn.End()

			local := localLine(t, logs, msg)
			own := local
			if tc.group != "" {
				own, _ = local[tc.group].(map[string]any)
			}
			if local["component"] != "store" || own["name"] != "get" {
				t.Errorf("local line %v: want component at the top and name in %q", local, tc.group)
			}
			if local["trace.id"] == nil || local["span.id"] == nil {
				t.Errorf("local line %v: want trace.id and span.id at the top", local)
			}
			if tc.group != "" && (own["trace.id"] != nil || own["span.id"] != nil) {
				t.Errorf("local line %v: trace.id and span.id inside the group %q", local, tc.group)
			}
			col.WaitFor(t, "the forwarded line", 10*time.Second, func(c *servicetest.Collector) bool {
				for _, l := range c.Logs() {
					if l["message"] == msg {
						return true
					}
				}
				return false
			})
		})
	}
}

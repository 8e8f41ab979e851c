package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/prodready/service/internal/monitoring"
)

// startMonitoring starts the New Relic agent, or says in one line why
// monitoring is off. Connecting happens in the background: New Relic being
// unreachable never delays or stops the start, and /status shows it.
func (s *service) startMonitoring(context.Context) error {
	agent, err := monitoring.New(monitoring.Options{Config: s.cfg.NewRelic, ServiceName: s.cfg.Service.Name, Logger: s.logger})
	if err != nil {
		return err
	}
	s.agent = agent
	if !agent.On() {
		s.logger.Info("monitoring is off: " + agent.Off())
		return nil
	}
	nr := s.cfg.NewRelic
	s.logger.Info("new relic agent started; it connects in the background (check newrelic:connected on /status)",
		"app_name", or(nr.AppName, s.cfg.Service.Name), "collector_host", or(nr.CollectorHost, "(from the license key)"),
		"log_forwarding", agent.ForwardsLogs(), "high_security", nr.HighSecurity, "distributed_tracing", nr.DistributedTracing)
	if nr.HighSecurity && nr.LogForwarding {
		s.logger.Info("newrelic.high_security is on: log records are not forwarded, whatever newrelic.log_forwarding says")
	}
	// The final harvest gets what is left of the shutdown budget.
	s.onStop(func() {
		deadline := s.shutdownBy
		if deadline.IsZero() { // the start failed: nothing to drain, a short flush
			deadline = time.Now().Add(5 * time.Second)
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		agent.Shutdown(ctx)
	})
	// Logs in context: trace.id and span.id on every record of a request,
	// in the local log and, when forwarding is on, in New Relic Logs.
	s.logger = slog.New(agent.LogHandler(s.logger.Handler()))
	// The service's own counters, as custom metrics.
	agent.Gauge("Logging/SyslogDropped", func() float64 { return float64(s.logs.SyslogStats().Dropped) })
	agent.Gauge("Alerts/MailsSent", func() float64 { return float64(s.alerts.Stats().Sent) })
	agent.Gauge("Alerts/MailsSuppressed", func() float64 {
		st := s.alerts.Stats()
		return float64(st.Throttled + st.Suppressed + st.Dropped)
	})
	// The part of those the budget stopped (docs/LOGGING.md, the alert budget).
	agent.Gauge("Alerts/MailsHeldByBudget", func() float64 { return float64(s.alerts.Stats().Suppressed) })
	return nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

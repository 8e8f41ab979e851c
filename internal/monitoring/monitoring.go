// Package monitoring reports the service to New Relic APM through the Go
// agent (github.com/newrelic/go-agent/v3): web transactions named by route
// template, datastore segments for every bun query and Redis command, errors
// with their stacks, logs in context, runtime metrics and the service's own
// counters as custom metrics. It also watches the agent's connection, for the
// newrelic:connected check on /status.
//
// An Agent that is off (no license key, or newrelic.enabled false) is a
// valid value whose methods do nothing, so callers wire it unconditionally.
// See docs/MONITORING.md.
package monitoring

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/newrelic/go-agent/v3/newrelic"

	"github.com/prodready/service/internal/config"
)

// Options are what New needs.
type Options struct {
	// Config is the newrelic section of the configuration.
	Config config.NewRelic
	// ServiceName is the application name when Config.AppName is empty.
	ServiceName string
	// Logger receives the agent's own messages (connected, harvest failures).
	// Pass the logger before LogHandler wraps it, so the agent's messages are
	// not forwarded back to the agent.
	Logger *slog.Logger
	// Transport replaces the transport to the collector; nil builds one that
	// trusts Config.CollectorCAFile, or the system roots.
	Transport http.RoundTripper
	// MetricsInterval is how often the gauges registered with Gauge are
	// sampled; zero means 20s. The agent sends metrics once a minute.
	MetricsInterval time.Duration
}

// Agent is the process's New Relic agent, or a do-nothing stand-in when
// monitoring is off.
type Agent struct {
	app    *newrelic.Application // nil when off
	state  *connState
	logger *slog.Logger
	off    string // why monitoring is off; "" when on

	forwardLogs bool
	metrics     *gauges
	failed      counter // requests answered with a 5xx

	stopOnce sync.Once
}

// New starts the agent as o.Config says: connecting happens in the
// background, so New does not wait for New Relic. It fails only when the
// configuration cannot work (an unreadable CA file, a setting the agent
// rejects); config validation catches the rest earlier.
func New(o Options) (*Agent, error) {
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	c := o.Config
	a := &Agent{logger: logger, state: &connState{}, metrics: newGauges()}
	switch {
	case !c.Enabled:
		a.off = "newrelic.enabled is false"
		return a, nil
	case c.LicenseKey == "":
		a.off = "no New Relic license key (set NEW_RELIC_LICENSE_KEY)"
		return a, nil
	}
	base := o.Transport
	if base == nil {
		var err error
		if base, err = collectorTransport(c.CollectorCAFile); err != nil {
			return nil, err
		}
	}
	name := c.AppName
	if name == "" {
		name = o.ServiceName
	}
	a.forwardLogs = c.LogForwarding && !c.HighSecurity
	app, err := newrelic.NewApplication(
		newrelic.ConfigAppName(name),
		newrelic.ConfigLicense(c.LicenseKey),
		newrelic.ConfigLogger(agentLogger{logger.With("component", "newrelic")}),
		func(cfg *newrelic.Config) {
			cfg.Labels = c.LabelMap()
			cfg.HighSecurity = c.HighSecurity
			cfg.DistributedTracer.Enabled = c.DistributedTracing
			cfg.Host = c.CollectorHost
			cfg.Transport = &stateTransport{base: base, state: a.state}
			cfg.Utilization.DetectAWS = c.UtilizationDetection
			cfg.Utilization.DetectAzure = c.UtilizationDetection
			cfg.Utilization.DetectGCP = c.UtilizationDetection
			cfg.Utilization.DetectPCF = c.UtilizationDetection
			cfg.Utilization.DetectDocker = c.UtilizationDetection
			cfg.Utilization.DetectKubernetes = c.UtilizationDetection
			// Logs in context: records are forwarded with their trace and span
			// IDs; the local log gets trace.id and span.id as attributes
			// (LogHandler), so the agent's own decoration of the message text
			// is not needed.
			cfg.ApplicationLogging.Enabled = true
			cfg.ApplicationLogging.Forwarding.Enabled = a.forwardLogs
			cfg.ApplicationLogging.LocalDecorating.Enabled = false
			cfg.ApplicationLogging.Metrics.Enabled = true
			// Errors are what the service reports as failures (NoticePanic,
			// NoticeError), the same that e-mail alerts use: a 4xx is the
			// client's doing, and a 503 written on purpose (readiness while
			// draining, load shedding) is an answer, not a failure.
			cfg.ErrorCollector.IgnoreStatusCodes = statusCodes(400, 599)
			cfg.ErrorCollector.RecordPanics = false // recovery catches them first
			cfg.RuntimeSampler.Enabled = true
		},
	)
	if err != nil {
		return nil, fmt.Errorf("new relic agent: %w", err)
	}
	a.app = app
	every := o.MetricsInterval
	if every <= 0 {
		every = 20 * time.Second
	}
	a.metrics.start(app, every)
	a.Gauge("HTTP/FailedRequests", a.failed.load)
	return a, nil
}

// On reports whether the agent runs.
func (a *Agent) On() bool { return a != nil && a.app != nil }

// Off says why monitoring is off, or "" when it is on: start-up logs it in
// one line, so an unmonitored process is a visible decision.
func (a *Agent) Off() string { return a.off }

// ForwardsLogs reports whether log records go to New Relic (off under high
// security whatever newrelic.log_forwarding says).
func (a *Agent) ForwardsLogs() bool { return a.On() && a.forwardLogs }

// Application is the agent's application, nil when off; integrations that
// take one (nrgin, nrslog) get it here.
func (a *Agent) Application() *newrelic.Application {
	if a == nil {
		return nil
	}
	return a.app
}

// Shutdown samples the gauges one last time and sends what the agent holds,
// within ctx's deadline (the service's shutdown budget) or 5s without one.
// Data that cannot be sent in time is lost, and said so.
func (a *Agent) Shutdown(ctx context.Context) {
	if !a.On() {
		return
	}
	a.stopOnce.Do(func() {
		a.metrics.stop()
		timeout := 5 * time.Second
		if d, ok := ctx.Deadline(); ok {
			timeout = max(time.Until(d), 0)
		}
		start := time.Now()
		a.app.Shutdown(timeout)
		if took := time.Since(start); took >= timeout {
			a.logger.Warn("new relic: shutdown budget spent before the last harvest was confirmed; its data may be lost",
				"timeout", timeout.String())
		}
	})
}

// statusCodes lists from..to, for the agent's status code settings.
func statusCodes(from, to int) []int {
	out := make([]int, 0, to-from+1)
	for c := from; c <= to; c++ {
		out = append(out, c)
	}
	return out
}

// collectorTransport trusts the PEM bundle at caFile, or the system roots
// when caFile is empty.
func collectorTransport(caFile string) (http.RoundTripper, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if caFile == "" {
		return t, nil
	}
	pemData, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("newrelic.collector_ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, errors.New("newrelic.collector_ca_file: no PEM certificate in " + caFile)
	}
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return t, nil
}

// agentLogger sends the agent's messages to slog. Its debug output (every
// payload) stays off: it is for New Relic support, not for the service log.
type agentLogger struct{ l *slog.Logger }

func (g agentLogger) Error(msg string, c map[string]any) { g.log(slog.LevelError, msg, c) }
func (g agentLogger) Warn(msg string, c map[string]any)  { g.log(slog.LevelWarn, msg, c) }
func (g agentLogger) Info(msg string, c map[string]any)  { g.log(slog.LevelInfo, msg, c) }
func (g agentLogger) Debug(string, map[string]any)       {}
func (g agentLogger) DebugEnabled() bool                 { return false }

func (g agentLogger) log(level slog.Level, msg string, c map[string]any) {
	attrs := make([]slog.Attr, 0, len(c))
	for k, v := range c {
		attrs = append(attrs, slog.Any(k, v))
	}
	g.l.LogAttrs(context.Background(), level, "new relic: "+msg, attrs...)
}

package config

import (
	"fmt"
	"net/url"
	"strings"
)

// LicenseKeyLen is the length of a New Relic ingest license key; the agent
// refuses any other.
const LicenseKeyLen = 40

// NewRelic configures the New Relic APM agent (internal/monitoring). The agent
// runs when Enabled is true and a license key is set; without a key it is off,
// which start-up says in one line. Production and staging refuse to start
// without monitoring unless Enabled is set to false on purpose.
type NewRelic struct {
	Enabled bool `yaml:"enabled"`
	// AppName groups the data in New Relic; empty means service.name.
	AppName    string `yaml:"app_name" env:"NEW_RELIC_APP_NAME"`
	LicenseKey string `yaml:"license_key" env:"NEW_RELIC_LICENSE_KEY" secret:"true"`
	// Labels are "key:value" pairs that roll applications up in New Relic
	// (team:notes, tier:api).
	Labels             []string `yaml:"labels"`
	DistributedTracing bool     `yaml:"distributed_tracing"`
	// LogForwarding sends log records, with their trace and span IDs, to New
	// Relic. HighSecurity turns it off whatever this says.
	LogForwarding bool `yaml:"log_forwarding"`
	HighSecurity  bool `yaml:"high_security"`
	// CollectorHost overrides where the agent connects first (host[:port]);
	// empty derives it from the license key's region.
	CollectorHost string `yaml:"collector_host"`
	// CollectorCAFile is a PEM bundle that signs the collector's certificate,
	// for a collector host behind a TLS-inspecting proxy or a test collector;
	// empty trusts the system roots.
	CollectorCAFile string `yaml:"collector_ca_file"`
	// UtilizationDetection lets the agent ask cloud metadata endpoints (AWS,
	// Azure, GCP, PCF) and the container runtime what it runs on. Tests and
	// demos turn it off, so nothing leaves the machine.
	UtilizationDetection bool `yaml:"utilization_detection"`
}

// On reports whether the agent runs: enabled, with a license key.
func (n NewRelic) On() bool { return n.Enabled && n.LicenseKey != "" }

// LabelMap returns Labels as the agent takes them. Validation has checked
// that every entry is a key:value pair.
func (n NewRelic) LabelMap() map[string]string {
	m := make(map[string]string, len(n.Labels))
	for _, l := range n.Labels {
		k, v, _ := strings.Cut(l, ":")
		m[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return m
}

// validateNewRelic checks the shape of the newrelic keys that are set.
func (l *Loaded) validateNewRelic() Errors {
	var errs Errors
	n := l.NewRelic
	src := func(key string) string { return l.Sources[key] }
	if n.LicenseKey != "" && len(n.LicenseKey) != LicenseKeyLen {
		errs = append(errs, Problem{Key: "newrelic.license_key", Source: src("newrelic.license_key"),
			Message: fmt.Sprintf("is %d characters long, a New Relic license key has %d (value not shown)", len(n.LicenseKey), LicenseKeyLen)})
	}
	for _, lb := range n.Labels {
		k, v, ok := strings.Cut(lb, ":")
		if !ok || strings.TrimSpace(k) == "" || strings.TrimSpace(v) == "" {
			errs = append(errs, Problem{Key: "newrelic.labels", Source: src("newrelic.labels"),
				Message: fmt.Sprintf("%q is not a key:value pair (for example team:notes)", lb)})
		}
	}
	if h := n.CollectorHost; h != "" {
		u, err := url.Parse("https://" + h)
		if strings.Contains(h, "://") || err != nil || u.Host == "" || u.Path != "" || u.RawQuery != "" {
			errs = append(errs, Problem{Key: "newrelic.collector_host", Source: src("newrelic.collector_host"),
				Message: fmt.Sprintf("%q is not host or host:port (no scheme, no path)", h)})
		}
	}
	return errs
}

// requireMonitoring is the production and staging rule: an application
// nobody watches fails silently, so missing monitoring must be a conscious
// opt-out (newrelic.enabled: false), never an omission.
func (l *Loaded) requireMonitoring() Errors {
	n := l.NewRelic
	if !n.Enabled || n.LicenseKey != "" {
		return nil
	}
	return Errors{{Key: "newrelic.license_key", Source: l.Sources["newrelic.license_key"],
		Message: l.Environment + " needs application monitoring: set NEW_RELIC_LICENSE_KEY (or " +
			EnvName("newrelic.license_key") + "_FILE), or opt out on purpose with " + EnvName("newrelic.enabled") + "=false"}}
}

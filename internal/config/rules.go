package config

import (
	"fmt"
	"net/mail"
	"strings"
	"time"
)

// problems collects what validate finds: add is the one way a problem is
// written, with its key's source, and reported remembers the keys already
// reported so that a rule spanning keys stays quiet about a key that is
// wrong on its own.
type problems struct {
	sources  map[string]string
	errs     Errors
	reported map[string]bool
}

func (p *problems) add(key, msg string) {
	p.errs = append(p.errs, Problem{Key: key, Source: p.sources[key], Message: msg})
	p.reported[key] = true
}

// rule is one rule that spans keys (or needs more than a key's own tags):
// check returns one message per problem with key, nothing when the rule
// holds. A rule does not run when one of the keys in unless was already
// reported: its message would only repeat that problem.
type rule struct {
	key    string
	unless []string
	check  func(c *Config) []string
}

// apply runs r against c.
func (p *problems) apply(r rule, c *Config) {
	for _, k := range r.unless {
		if p.reported[k] {
			return
		}
	}
	for _, msg := range r.check(c) {
		p.add(r.key, msg)
	}
}

// when is a rule's single message, written only when cond holds.
func when(cond bool, format string, args ...any) []string {
	if !cond {
		return nil
	}
	return []string{fmt.Sprintf(format, args...)}
}

// nonEmpty is a check's message as a rule's result: none when msg is "".
func nonEmpty(msg string) []string { return when(msg != "", "%s", msg) }

// rules are the cross-field rules, in the order their problems are listed.
var rules = []rule{
	{"http.host", []string{"http.host"}, func(c *Config) []string { return nonEmpty(checkHost(c.HTTP.Host)) }},
	{"http.queue_timeout", []string{"http.queue_timeout", "http.write_timeout"}, func(c *Config) []string {
		return when(c.HTTP.MaxInFlight > 0 && c.HTTP.QueueTimeout >= c.HTTP.WriteTimeout,
			"%s is not shorter than http.write_timeout (%s): a queued request could not be answered", c.HTTP.QueueTimeout, c.HTTP.WriteTimeout)
	}},
	{"database.request_timeout", []string{"database.request_timeout", "http.write_timeout"}, func(c *Config) []string {
		return when(c.Database.RequestTimeout >= c.HTTP.WriteTimeout,
			"%s is not shorter than http.write_timeout (%s): a request waiting on the database would be cut before its 503 is written, and its client would get no answer at all", c.Database.RequestTimeout, c.HTTP.WriteTimeout)
	}},
	statusTimeout("status.database_timeout", func(c *Config) time.Duration { return c.Status.DatabaseTimeout }),
	statusTimeout("status.cache_timeout", func(c *Config) time.Duration { return c.Status.CacheTimeout }),
	statusTimeout("status.smtp_timeout", func(c *Config) time.Duration {
		return onlyIf(c.Email.Enabled, c.Status.SMTPTimeout) // no SMTP check without e-mail
	}),
	statusTimeout("status.syslog_timeout", func(c *Config) time.Duration {
		return onlyIf(c.Log.Syslog.Enabled, c.Status.SyslogTimeout) // nor a syslog one without syslog
	}),
	{"database.max_idle_conns", []string{"database.max_idle_conns", "database.max_open_conns"}, func(c *Config) []string {
		return when(c.Database.MaxIdleConns > c.Database.MaxOpenConns, "%d is larger than database.max_open_conns (%d)", c.Database.MaxIdleConns, c.Database.MaxOpenConns)
	}},
	{"database.url", nil, func(c *Config) []string {
		return nonEmpty(checkURL(c.Database.URL, "postgres", "postgresql", "sqlite", "file"))
	}},
	{"cache.redis_url", nil, func(c *Config) []string { return nonEmpty(checkURL(c.Cache.RedisURL, "redis", "rediss", "unix")) }},
	{"status.disk_fail_percent", []string{"status.disk_fail_percent", "status.disk_warn_percent"}, func(c *Config) []string {
		return when(c.Status.DiskFailPercent > c.Status.DiskWarnPercent,
			"%d is larger than status.disk_warn_percent (%d): failing must need less free space than warning", c.Status.DiskFailPercent, c.Status.DiskWarnPercent)
	}},
	{"backup.litestream_socket", nil, func(c *Config) []string {
		return when(continuousBackup(c) && !strings.HasPrefix(c.Database.URL, "postgres") && strings.TrimSpace(c.Backup.LitestreamSocket) == "",
			"continuous mode on SQLite asks Litestream for its last sync: set its control socket")
	}},
	backupThresholds("backup.warn_after", "backup.fail_after", false),
	backupThresholds("backup.continuous_warn_after", "backup.continuous_fail_after", true),
	{"email.new_fingerprint_reserve", []string{"email.new_fingerprint_reserve", "email.hourly_cap"}, func(c *Config) []string {
		return when(c.Email.NewFingerprintReserve >= c.Email.HourlyCap,
			"%d is not less than email.hourly_cap (%d): repeats of a known error would have no mail left", c.Email.NewFingerprintReserve, c.Email.HourlyCap)
	}},
	{"debug.fail_route", nil, func(c *Config) []string {
		return when(c.Debug.FailRoute && c.Environment == Production,
			"routes that fail on purpose are refused in production (development and staging only)")
	}},
	{"email.recipients", nil, func(c *Config) []string {
		return when(c.Email.Enabled && len(c.Email.Recipients) == 0, "e-mail is enabled but no recipient is set")
	}},
	{"email.recipients", nil, func(c *Config) []string {
		var msgs []string
		for _, r := range c.Email.Recipients {
			msgs = append(msgs, when(c.Email.Enabled && !isAddress(r), "%q is not an e-mail address", r)...)
		}
		return msgs
	}},
	{"email.from", nil, func(c *Config) []string {
		return when(c.Email.Enabled && !isAddress(c.Email.From), "%q is not an e-mail address", c.Email.From)
	}},
	{"email.smtp_host", nil, func(c *Config) []string {
		return when(c.Email.Enabled && strings.TrimSpace(c.Email.SMTPHost) == "", "e-mail is enabled but no SMTP host is set")
	}},
	{"email.password", nil, func(c *Config) []string {
		return when(c.Email.Enabled && c.Email.Username != "" && c.Email.Password == "", "email.username is set but the password is empty")
	}},
	{"log.syslog.address", nil, func(c *Config) []string {
		return when(c.Log.Syslog.Enabled && strings.TrimSpace(c.Log.Syslog.Address) == "", "syslog is enabled but no address is set")
	}},
	{"status.tokens", []string{"status.tokens"}, func(c *Config) []string {
		short := false
		for _, tok := range c.Status.Tokens {
			short = short || len(tok) < MinTokenLen
		}
		return when(c.Environment != Development && short,
			"a token is shorter than %d characters (value not shown); generate one with: openssl rand -hex 32", MinTokenLen)
	}},
}

// lastRules come after the New Relic keys' own checks.
var lastRules = []rule{
	{"database.sqlite_path", nil, func(c *Config) []string {
		return when(c.Database.URL == "" && strings.TrimSpace(c.Database.SQLitePath) == "", "is empty and database.url is not set: one of them is needed")
	}},
}

// productionRules: production needs real infrastructure and its secrets,
// and so does staging, which must be identical to production to prove
// anything. They run last, with one clear line for each missing piece,
// reported together with every other problem (validate says when they
// cannot be judged).
var productionRules = []rule{
	{"database.url", []string{"database.url"}, func(c *Config) []string {
		return when(!isPostgres(c.Database.URL), "%s needs a PostgreSQL database: set DATABASE_URL (or %s_FILE), or set %s=development to use the embedded SQLite file",
			c.Environment, EnvName("database.url"), EnvName("environment"))
	}},
	{"status.tokens", []string{"status.tokens"}, func(c *Config) []string {
		return when(len(c.Status.Tokens) == 0, "%s needs a status token for monitors: set STATUS_TOKENS (or %s_FILE)", c.Environment, EnvName("status.tokens"))
	}},
}

// statusTimeout is the rule that one check's timeout fits in
// status.deadline: past the deadline /status answers without the check,
// which reads as "no answer within the status deadline", never as its own
// timeout.
func statusTimeout(key string, timeout func(*Config) time.Duration) rule {
	return rule{key, []string{key, "status.deadline"}, func(c *Config) []string {
		return when(timeout(c) > c.Status.Deadline,
			"%s is longer than status.deadline (%s): the check would always be cut at the deadline instead of ending at its own timeout", timeout(c), c.Status.Deadline)
	}}
}

// onlyIf is d when the check it times runs (on), else 0, which fits any
// deadline: a timeout of a check that is not registered cannot be wrong.
func onlyIf(on bool, d time.Duration) time.Duration {
	if on {
		return d
	}
	return 0
}

// backupThresholds is the rule that the backup check warns before it
// fails, for the threshold pair of the periodic or the continuous mode.
func backupThresholds(warnKey, failKey string, continuous bool) rule {
	return rule{failKey, []string{failKey, warnKey}, func(c *Config) []string {
		if !c.Backup.CheckOn(c.Environment) || continuousBackup(c) != continuous {
			return nil
		}
		warn, fail := c.Backup.Thresholds()
		return when(fail <= warn, "%s is not longer than %s (%s): the check must warn before it fails", fail, warnKey, warn)
	}}
}

func continuousBackup(c *Config) bool {
	return c.Backup.CheckOn(c.Environment) && c.Backup.Mode == "continuous"
}

func isAddress(s string) bool {
	_, err := mail.ParseAddress(s)
	return err == nil
}

// validate checks ranges, enums and text, then the rules that span keys,
// the service's and each section's own, then what production and staging
// need. earlier are the problems Load already found (a bad file line, a bad
// variable): a key among them is not judged again, and the production rules
// stay quiet only when they cannot be judged: the file could not be read or
// parsed as a whole (its environment and secrets are unknown), or
// environment itself is wrong.
func (l *Loaded) validate(fields []Field, earlier Errors) Errors {
	c := &l.Config
	p := &problems{sources: l.Sources, reported: map[string]bool{}}
	wholeFile := false
	for _, e := range earlier {
		p.reported[e.Key] = true
		wholeFile = wholeFile || e.Key == ""
	}
	for _, f := range fields {
		if msg := f.checkRange(c); msg != "" {
			p.add(f.Key, msg)
		}
	}
	for _, pr := range l.checkText(fields) {
		p.errs = append(p.errs, pr)
		p.reported[pr.Key] = true
	}
	for _, r := range rules {
		p.apply(r, c)
	}
	p.validateSections(c, l.sections)
	p.errs = append(p.errs, l.validateNewRelic()...)
	for _, r := range lastRules {
		p.apply(r, c)
	}
	if !wholeFile && !p.reported["environment"] && (c.Environment == Production || c.Environment == Staging) {
		for _, r := range productionRules {
			p.apply(r, c)
		}
		if !p.reported["newrelic.license_key"] && !p.reported["newrelic.enabled"] {
			p.errs = append(p.errs, l.requireMonitoring()...)
		}
	}
	return p.errs
}

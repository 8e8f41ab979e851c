// Package config loads the service configuration in three layers:
// built-in defaults < a YAML file < environment variables, then validates the
// result and reports every problem at once, each naming its key and where the
// value came from (default, file:line or the environment variable).
//
// Every key has exactly one environment variable by one rule: "APP_" followed
// by the key in upper case with dots replaced by underscores (log.level ->
// APP_LOG_LEVEL). A few platform conventions are accepted too (PORT,
// DATABASE_URL, REDIS_URL); the APP_ name wins when both are set. Secret keys
// may instead be read from a file named by <VARIABLE>_FILE, as container
// platforms mount secrets.
package config

import (
	"reflect"
	"time"
)

// Environments the service knows. Production is the default because the
// defaults are meant to be what production runs; development relaxes the
// rules that need infrastructure (PostgreSQL, secrets).
const (
	Development = "development"
	Staging     = "staging"
	Production  = "production"
)

// MinTokenLen is the shortest status token accepted outside development.
const MinTokenLen = 16

// Config is the whole configuration: the service's own keys, and the
// sections the resources declare (Section), which Load adds. Struct tags
// drive loading, validation and documentation checks:
//
//	yaml:"name"       the key segment (keys are dotted paths: http.port)
//	env:"A,B"         extra environment variables accepted besides APP_<KEY>
//	secret:"true"     redacted in output and logs; may come from <VAR>_FILE
//	enum:"a,b"        allowed values
//	min:"n" max:"n"   inclusive range for numbers and durations
type Config struct {
	Environment string   `yaml:"environment" enum:"development,staging,production"`
	Service     Service  `yaml:"service"`
	HTTP        HTTP     `yaml:"http"`
	Log         Log      `yaml:"log"`
	Email       Email    `yaml:"email"`
	Status      Status   `yaml:"status"`
	Database    Database `yaml:"database"`
	Cache       Cache    `yaml:"cache"`
	Backup      Backup   `yaml:"backup"`
	NewRelic    NewRelic `yaml:"newrelic"`
	Debug       Debug    `yaml:"debug"`

	sections map[string]reflect.Value // a *T for each Section, by name; read with Section.From
}

// Debug holds development aids that must never be on in production.
type Debug struct {
	// FailRoute serves GET /debug/panic and GET /debug/error, which fail on
	// purpose so the stack-trace mail can be watched. Always on in
	// development; refused in production.
	FailRoute bool `yaml:"fail_route"`
}

// Service names this deployment in logs, e-mails and the status route.
type Service struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
}

// HTTP configures the listener. The timeouts guard against slow clients
// (Slowloris) and stuck connections; net/http has none by default.
type HTTP struct {
	Host              string        `yaml:"host"`
	Port              int           `yaml:"port" env:"PORT" min:"0" max:"65535"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout" min:"1ms" max:"5m"`
	ReadTimeout       time.Duration `yaml:"read_timeout" min:"1ms" max:"1h"`
	WriteTimeout      time.Duration `yaml:"write_timeout" min:"1ms" max:"1h"`
	// WriteStallTimeout bounds how long a handler waits for its client to
	// take a part of a large answer, so a client that reads nothing cannot
	// hold a shedding slot until WriteTimeout.
	WriteStallTimeout time.Duration `yaml:"write_stall_timeout" min:"10ms" max:"1h"`
	IdleTimeout       time.Duration `yaml:"idle_timeout" min:"1ms" max:"1h"`
	MaxBodyBytes      int64         `yaml:"max_body_bytes" min:"1" max:"104857600"`
	ShutdownTimeout   time.Duration `yaml:"shutdown_timeout" min:"1s" max:"10m"`
	DrainDelay        time.Duration `yaml:"drain_delay" min:"0s" max:"5m"`
	// Workers > 1 runs a master that holds the socket and that many worker
	// processes sharing it (api serve --workers N overrides it); 0 or 1 is
	// one process, which already serves every core.
	Workers int `yaml:"workers" min:"0" max:"128"`
	// WorkerReadyTimeout bounds how long the new workers of a SIGHUP
	// reload may take to serve; past it the reload is abandoned.
	WorkerReadyTimeout time.Duration `yaml:"worker_ready_timeout" min:"1s" max:"10m"`
	// ReusePort binds with SO_REUSEPORT, so a replacement process can bind
	// while this one drains.
	ReusePort bool `yaml:"reuse_port"`
	// Overload shedding, per process: at most MaxInFlight requests run at
	// once (0 turns shedding off), QueueSize more wait up to QueueTimeout,
	// the rest get 503 with Retry-After at once.
	MaxInFlight  int           `yaml:"max_in_flight" min:"0" max:"100000"`
	QueueSize    int           `yaml:"queue_size" min:"0" max:"100000"`
	QueueTimeout time.Duration `yaml:"queue_timeout" min:"1ms" max:"1m"`
	// MaxReadDelay sheds where the in-flight limit cannot see: when the
	// 90th percentile of how long requests waited unread (in the socket,
	// then for a CPU) is over it two 100 ms windows in a row, a share of
	// requests is refused at once until the waits fall back. 0 turns it off; it
	// needs max_in_flight.
	MaxReadDelay time.Duration `yaml:"max_read_delay" min:"0s" max:"1m"`
}

// Log configures log/slog: a global minimum level, then sinks (stdout,
// stderr, syslog), each with its own minimum level and format. An empty sink
// level or format inherits the global one.
type Log struct {
	Level  string    `yaml:"level" enum:"debug,info,warn,error"`
	Format string    `yaml:"format" enum:"json,text"`
	Stdout LogSink   `yaml:"stdout"`
	Stderr LogSink   `yaml:"stderr"`
	Syslog LogSyslog `yaml:"syslog"`
	// How often counts of dropped syslog records are logged (when any were dropped).
	DroppedReportInterval time.Duration `yaml:"dropped_report_interval" min:"1s" max:"24h"`
	// How long a JSON stream sink may hold info and debug access lines to
	// write them together (0: each as it comes); every other line is written
	// at once, after them.
	AccessFlushInterval time.Duration `yaml:"access_flush_interval" min:"0s" max:"10s"`
}

// LogSink is a stream sink.
type LogSink struct {
	Enabled bool   `yaml:"enabled"`
	Level   string `yaml:"level" enum:",debug,info,warn,error"`
	Format  string `yaml:"format" enum:",json,text"`
}

// LogSyslog sends records to a syslog daemon without ever blocking a request:
// a bounded queue drops (and counts) records when the daemon is slow or gone.
type LogSyslog struct {
	Enabled      bool          `yaml:"enabled"`
	Level        string        `yaml:"level" enum:",debug,info,warn,error"`
	Network      string        `yaml:"network" enum:"unixgram,unix,udp,tcp,tcp+tls"`
	Address      string        `yaml:"address"`
	Protocol     string        `yaml:"protocol" enum:"rfc5424,rfc3164"`
	Facility     string        `yaml:"facility" enum:"kern,user,mail,daemon,auth,syslog,lpr,news,uucp,cron,authpriv,ftp,local0,local1,local2,local3,local4,local5,local6,local7"`
	AppName      string        `yaml:"app_name"`
	QueueSize    int           `yaml:"queue_size" min:"1" max:"1000000"`
	WriteTimeout time.Duration `yaml:"write_timeout" min:"1ms" max:"1m"`
	TLSCAFile    string        `yaml:"tls_ca_file"`
}

// Email sends stack-trace e-mails for panics and unhandled 5xx errors,
// asynchronously, deduplicated and capped so an error storm cannot flood.
type Email struct {
	Enabled       bool          `yaml:"enabled"`
	Recipients    []string      `yaml:"recipients"`
	From          string        `yaml:"from"`
	SubjectPrefix string        `yaml:"subject_prefix"`
	SMTPHost      string        `yaml:"smtp_host"`
	SMTPPort      int           `yaml:"smtp_port" min:"1" max:"65535"`
	Username      string        `yaml:"username"`
	Password      string        `yaml:"password" secret:"true"`
	TLSPolicy     string        `yaml:"tls_policy" enum:"mandatory,opportunistic,none"`
	Timeout       time.Duration `yaml:"timeout" min:"100ms" max:"5m"`
	QueueSize     int           `yaml:"queue_size" min:"1" max:"100000"`
	HourlyCap     int           `yaml:"hourly_cap" min:"1" max:"100000"`
	// Of HourlyCap, this many mails are kept for fingerprints not mailed
	// yet this hour: repeats of a known error cannot use them.
	NewFingerprintReserve int `yaml:"new_fingerprint_reserve" min:"0" max:"100000"`
	// What the cap held back is listed in the next mail, or in a digest
	// once the oldest of it has waited this long.
	DigestInterval time.Duration `yaml:"digest_interval" min:"5s" max:"24h"`
	OnErrorLog     bool          `yaml:"on_error_log"`
	FlushTimeout   time.Duration `yaml:"flush_timeout" min:"0s" max:"5m"`
}

// Status configures the token-protected status route and its checks.
type Status struct {
	Tokens          []string      `yaml:"tokens" env:"STATUS_TOKENS" secret:"true"`
	AllowQueryToken bool          `yaml:"allow_query_token"`
	CacheTTL        time.Duration `yaml:"cache_ttl" min:"0s" max:"5m"`
	Deadline        time.Duration `yaml:"deadline" min:"10ms" max:"1m"`
	DatabaseTimeout time.Duration `yaml:"database_timeout" min:"1ms" max:"1m"`
	CacheTimeout    time.Duration `yaml:"cache_timeout" min:"1ms" max:"1m"`
	SMTPTimeout     time.Duration `yaml:"smtp_timeout" min:"1ms" max:"1m"`
	SyslogTimeout   time.Duration `yaml:"syslog_timeout" min:"1ms" max:"1m"`
	DiskWarnPercent int           `yaml:"disk_warn_percent" min:"0" max:"100"`
	DiskFailPercent int           `yaml:"disk_fail_percent" min:"0" max:"100"`
	// A check (and a failing /status answer) is logged when its state
	// changes, and again at most this often while it stays failing.
	RepeatLogInterval time.Duration `yaml:"repeat_log_interval" min:"1s" max:"24h"`
	// A client address that presents this many wrong tokens within
	// TokenFailureWindow is answered 429 until the window ends.
	TokenFailureLimit  int           `yaml:"token_failure_limit" min:"1" max:"100000"`
	TokenFailureWindow time.Duration `yaml:"token_failure_window" min:"1s" max:"24h"`
}

// Database selects the store: SQLite at SQLitePath when URL is empty,
// PostgreSQL when URL is a postgres:// URL. The timeouts bound every piece of
// database work, so an unreachable or partitioned database costs a request a
// known time (then a 503), never a hang that holds a pooled connection.
type Database struct {
	URL              string        `yaml:"url" env:"DATABASE_URL" secret:"true"`
	SQLitePath       string        `yaml:"sqlite_path"`
	BusyTimeout      time.Duration `yaml:"busy_timeout" min:"0s" max:"5m"`
	ConnectTimeout   time.Duration `yaml:"connect_timeout" min:"100ms" max:"1m"`
	StatementTimeout time.Duration `yaml:"statement_timeout" min:"0s" max:"1h"`
	RequestTimeout   time.Duration `yaml:"request_timeout" min:"10ms" max:"10m"`
	MaxOpenConns     int           `yaml:"max_open_conns" min:"1" max:"1000"`
	MaxIdleConns     int           `yaml:"max_idle_conns" min:"0" max:"1000"`
	ConnMaxLifetime  time.Duration `yaml:"conn_max_lifetime" min:"0s" max:"24h"`
	ConnMaxIdleTime  time.Duration `yaml:"conn_max_idle_time" min:"0s" max:"24h"`
	MigrateOnStart   bool          `yaml:"migrate_on_start"`
}

// Cache configures the read-through cache: Redis when RedisURL is set,
// a bounded in-memory LRU otherwise.
type Cache struct {
	RedisURL         string        `yaml:"redis_url" env:"REDIS_URL" secret:"true"`
	KeyPrefix        string        `yaml:"key_prefix"`
	TTL              time.Duration `yaml:"ttl" min:"1s" max:"24h"`
	Timeout          time.Duration `yaml:"timeout" min:"1ms" max:"1m"`
	MemoryMaxEntries int           `yaml:"memory_max_entries" min:"1" max:"10000000"`
	// After FailureThreshold failures in a row, Redis is skipped for
	// Cooldown (reads go to the database), then one call probes it.
	FailureThreshold int           `yaml:"failure_threshold" min:"1" max:"1000"`
	Cooldown         time.Duration `yaml:"cooldown" min:"100ms" max:"10m"`
}

// Default returns the built-in configuration: what production runs unless
// told otherwise. config.yaml at the repository root spells out the same values.
func Default() Config {
	return Config{
		Environment: Production,
		HTTP: HTTP{
			Host:               "0.0.0.0",
			Port:               8080,
			ReadHeaderTimeout:  5 * time.Second,
			ReadTimeout:        15 * time.Second,
			WriteTimeout:       30 * time.Second,
			WriteStallTimeout:  5 * time.Second,
			IdleTimeout:        120 * time.Second,
			MaxBodyBytes:       1 << 20,
			ShutdownTimeout:    20 * time.Second,
			DrainDelay:         5 * time.Second,
			Workers:            0,
			WorkerReadyTimeout: 30 * time.Second,
			// From the measurement in docs/PERFORMANCE.md ("Shedding defaults").
			MaxInFlight:  64,
			QueueSize:    64,
			QueueTimeout: time.Second,
			MaxReadDelay: 50 * time.Millisecond,
		},
		Service: Service{Name: "notes-api", Description: "Notes API: a reference service for production readiness"},
		Log: Log{
			Level: "info", Format: "json",
			Stdout: LogSink{Enabled: true},
			Stderr: LogSink{Enabled: false, Level: "warn"},
			Syslog: LogSyslog{
				Network: "unixgram", Address: "/dev/log", Protocol: "rfc5424", Facility: "local0",
				AppName: "notes-api", QueueSize: 10000, WriteTimeout: time.Second,
			},
			DroppedReportInterval: time.Minute,
			AccessFlushInterval:   100 * time.Millisecond,
		},
		Email: Email{
			From: "notes-api@localhost", SubjectPrefix: "[notes-api]", SMTPHost: "localhost", SMTPPort: 587,
			TLSPolicy: "mandatory", Timeout: 10 * time.Second, QueueSize: 100, HourlyCap: 30, FlushTimeout: 5 * time.Second,
			NewFingerprintReserve: 10, DigestInterval: 15 * time.Minute,
		},
		Status: Status{
			CacheTTL: 2 * time.Second, Deadline: 3 * time.Second,
			DatabaseTimeout: time.Second, CacheTimeout: 500 * time.Millisecond,
			SMTPTimeout: 2 * time.Second, SyslogTimeout: time.Second,
			DiskWarnPercent: 10, DiskFailPercent: 5,
			RepeatLogInterval: time.Minute,
			TokenFailureLimit: 10, TokenFailureWindow: time.Minute,
		},
		Database: Database{
			SQLitePath:       "data/notes.db",
			BusyTimeout:      5 * time.Second,
			ConnectTimeout:   3 * time.Second,
			StatementTimeout: 5 * time.Second,
			RequestTimeout:   6 * time.Second,
			MaxOpenConns:     10,
			MaxIdleConns:     5,
			ConnMaxLifetime:  30 * time.Minute,
			ConnMaxIdleTime:  5 * time.Minute,
			MigrateOnStart:   true,
		},
		Cache: Cache{
			KeyPrefix:        "notes-api:",
			TTL:              5 * time.Minute,
			Timeout:          500 * time.Millisecond,
			MemoryMaxEntries: 10000,
			FailureThreshold: 5,
			Cooldown:         5 * time.Second,
		},
		Backup: Backup{
			Check:               "auto",
			Mode:                "dump",
			WarnAfter:           26 * time.Hour,
			FailAfter:           50 * time.Hour,
			ContinuousWarnAfter: 10 * time.Minute,
			ContinuousFailAfter: 30 * time.Minute,
			LitestreamSocket:    "/var/run/litestream.sock",
		},
		NewRelic: NewRelic{
			Enabled: true, DistributedTracing: true, LogForwarding: true, UtilizationDetection: true,
		},
	}
}

// Backup configures the status route's backup:age check (docs/BACKUP.md):
// the age of the newest point the database can be restored to.
//
// In dump mode that is the newest verified logical dump, from the backups
// table that scripts/backup/ fills; the thresholds suit a daily backup: 26h
// allows a late run, 50h means a whole night was missed. In continuous mode
// it is the last WAL segment PostgreSQL archived (pgBackRest), or
// Litestream's last sync of the SQLite file, so the thresholds are minutes.
type Backup struct {
	// auto: on except in development, where nobody runs the nightly job;
	// on, off: always, never.
	Check     string        `yaml:"check" enum:"auto,on,off"`
	Mode      string        `yaml:"mode" enum:"dump,continuous"`
	WarnAfter time.Duration `yaml:"warn_after" min:"1s" max:"8760h"`
	FailAfter time.Duration `yaml:"fail_after" min:"1s" max:"8760h"`
	// Continuous mode: archive_timeout (60s) and the 5-minute archive check
	// job keep a healthy point younger than a few minutes.
	ContinuousWarnAfter time.Duration `yaml:"continuous_warn_after" min:"1s" max:"24h"`
	ContinuousFailAfter time.Duration `yaml:"continuous_fail_after" min:"1s" max:"24h"`
	// Litestream's control socket (its socket.path), asked for the last sync
	// in continuous mode on SQLite.
	LitestreamSocket string `yaml:"litestream_socket"`
}

// Thresholds returns the warn and fail ages of the mode in use.
func (b Backup) Thresholds() (warn, fail time.Duration) {
	if b.Mode == "continuous" {
		return b.ContinuousWarnAfter, b.ContinuousFailAfter
	}
	return b.WarnAfter, b.FailAfter
}

// CheckOn reports whether the backup:age check runs in environment.
func (b Backup) CheckOn(environment string) bool {
	switch b.Check {
	case "on":
		return true
	case "off":
		return false
	default:
		return environment != Development
	}
}

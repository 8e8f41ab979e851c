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

import "time"

// Environments the service knows. Production is the default because the
// defaults are meant to be what production runs; development relaxes the
// rules that need infrastructure (PostgreSQL, secrets).
const (
	Development = "development"
	Staging     = "staging"
	Production  = "production"
)

// Config is the whole configuration. Struct tags drive loading, validation and
// documentation checks:
//
//	yaml:"name"       the key segment (keys are dotted paths: http.port)
//	env:"A,B"         extra environment variables accepted besides APP_<KEY>
//	secret:"true"     redacted in output and logs; may come from <VAR>_FILE
//	enum:"a,b"        allowed values
//	min:"n" max:"n"   inclusive range for numbers and durations
type Config struct {
	Environment string   `yaml:"environment" enum:"development,staging,production"`
	HTTP        HTTP     `yaml:"http"`
	Log         Log      `yaml:"log"`
	Database    Database `yaml:"database"`
	Cache       Cache    `yaml:"cache"`
	Notes       Notes    `yaml:"notes"`
}

// HTTP configures the listener. The timeouts guard against slow clients
// (Slowloris) and stuck connections; net/http has none by default.
type HTTP struct {
	Host              string        `yaml:"host"`
	Port              int           `yaml:"port" env:"PORT" min:"0" max:"65535"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout" min:"1ms" max:"5m"`
	ReadTimeout       time.Duration `yaml:"read_timeout" min:"1ms" max:"1h"`
	WriteTimeout      time.Duration `yaml:"write_timeout" min:"1ms" max:"1h"`
	IdleTimeout       time.Duration `yaml:"idle_timeout" min:"1ms" max:"1h"`
	MaxBodyBytes      int64         `yaml:"max_body_bytes" min:"1" max:"104857600"`
	ShutdownTimeout   time.Duration `yaml:"shutdown_timeout" min:"1s" max:"10m"`
}

// Log configures log/slog.
type Log struct {
	Level  string `yaml:"level" enum:"debug,info,warn,error"`
	Format string `yaml:"format" enum:"json,text"`
}

// Database selects the store: SQLite at SQLitePath when URL is empty,
// PostgreSQL when URL is a postgres:// URL.
type Database struct {
	URL             string        `yaml:"url" env:"DATABASE_URL" secret:"true"`
	SQLitePath      string        `yaml:"sqlite_path"`
	BusyTimeout     time.Duration `yaml:"busy_timeout" min:"0s" max:"5m"`
	MaxOpenConns    int           `yaml:"max_open_conns" min:"1" max:"1000"`
	MaxIdleConns    int           `yaml:"max_idle_conns" min:"0" max:"1000"`
	ConnMaxLifetime time.Duration `yaml:"conn_max_lifetime" min:"0s" max:"24h"`
	MigrateOnStart  bool          `yaml:"migrate_on_start"`
}

// Cache configures the read-through cache: Redis when RedisURL is set,
// a bounded in-memory LRU otherwise.
type Cache struct {
	RedisURL         string        `yaml:"redis_url" env:"REDIS_URL" secret:"true"`
	KeyPrefix        string        `yaml:"key_prefix"`
	TTL              time.Duration `yaml:"ttl" min:"1s" max:"24h"`
	Timeout          time.Duration `yaml:"timeout" min:"1ms" max:"1m"`
	MemoryMaxEntries int           `yaml:"memory_max_entries" min:"1" max:"10000000"`
}

// Notes configures the sample API.
type Notes struct {
	DefaultPageSize int `yaml:"default_page_size" min:"1" max:"1000"`
	MaxPageSize     int `yaml:"max_page_size" min:"1" max:"1000"`
}

// Default returns the built-in configuration: what production runs unless
// told otherwise. config.yaml at the repository root spells out the same values.
func Default() Config {
	return Config{
		Environment: Production,
		HTTP: HTTP{
			Host:              "0.0.0.0",
			Port:              8080,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       15 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxBodyBytes:      1 << 20,
			ShutdownTimeout:   20 * time.Second,
		},
		Log: Log{Level: "info", Format: "json"},
		Database: Database{
			SQLitePath:      "data/notes.db",
			BusyTimeout:     5 * time.Second,
			MaxOpenConns:    10,
			MaxIdleConns:    5,
			ConnMaxLifetime: 30 * time.Minute,
			MigrateOnStart:  true,
		},
		Cache: Cache{
			KeyPrefix:        "notes-api:",
			TTL:              5 * time.Minute,
			Timeout:          500 * time.Millisecond,
			MemoryMaxEntries: 10000,
		},
		Notes: Notes{DefaultPageSize: 20, MaxPageSize: 100},
	}
}

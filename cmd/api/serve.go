package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/uptrace/bun"

	"github.com/prodready/service/internal/alert"
	"github.com/prodready/service/internal/backup"
	"github.com/prodready/service/internal/cache"
	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/database"
	"github.com/prodready/service/internal/health"
	"github.com/prodready/service/internal/logging"
	"github.com/prodready/service/internal/notes"
	"github.com/prodready/service/internal/server"
)

// serve runs the HTTP service until ctx is cancelled, then shuts down
// gracefully: in-flight requests get up to http.shutdown_timeout to finish.
// getenv is kept to reload the configuration on SIGHUP.
func serve(ctx context.Context, l *config.Loaded, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	cfg := l.Config

	// Logging: one logger for the whole process, configured once. SIGHUP
	// reloads the configuration and applies its log level without a restart.
	host, _ := os.Hostname()
	logs, err := logging.Setup(logging.Options{Config: cfg.Log, Stdout: stdout, Stderr: stderr, Hostname: host})
	if err != nil {
		return err // unreachable after validation; kept so a bad level is never ignored
	}
	defer closeLogs(logs, stdout)
	logger := logs.Logger.With("service", cfg.Service.Name)
	// main prints the error on stderr; the log sinks (syslog, the platform's
	// collector) must learn why the process stopped too. Runs before closeLogs.
	defer func() {
		if err != nil {
			logger.Error("service stopped with an error", "error", err.Error())
		}
	}()
	logger.Info("starting", "version", version, "environment", cfg.Environment, "config", l)
	stopReload := reloadLevelOnSIGHUP(logs, logger, l.File, getenv)
	defer stopReload()

	// Alerts: stack-trace e-mails for panics and unhandled 5xx errors, queued
	// and sent in the background (a no-op reporter when email.enabled is off).
	rep, err := newAlertReporter(cfg, logger)
	if err != nil {
		return err
	}
	defer installAlertHooks(rep)()
	defer flushAlerts(rep, cfg.Email.FlushTimeout, logger)
	logger = slog.New(rep.LogHandler(logger.Handler())) // error records can be mailed too (email.on_error_log)

	// Database: fail fast when it cannot be reached at start, so the platform
	// restarts us with backoff instead of serving a process that can do nothing.
	db, err := database.Open(ctx, dbOptions(cfg))
	if err != nil {
		return err
	}
	defer db.Close()
	if cfg.Database.MigrateOnStart {
		applied, err := database.Migrate(ctx, db, logger)
		if err != nil {
			return err
		}
		logger.Info("migrations applied at start", "applied", applied, "dialect", database.Dialect(db))
	}

	// Cache: Redis when configured, memory otherwise. Redis being down never
	// stops the service: reads fall back to the database and errors are counted.
	var c cache.Cache
	if cfg.Cache.RedisURL != "" {
		cache.RouteRedisLogs(logger)
		r, err := cache.NewRedis(ctx, cfg.Cache.RedisURL, cache.RedisOptions{
			KeyPrefix:   cfg.Cache.KeyPrefix,
			DialTimeout: cfg.Cache.Timeout, ReadTimeout: cfg.Cache.Timeout, WriteTimeout: cfg.Cache.Timeout,
		})
		if err != nil {
			return fmt.Errorf("cache: %w", err)
		}
		if err := r.Ping(ctx); err != nil {
			logger.Warn("redis unreachable at start; reads go to the database until it answers", "error", err)
		}
		c = r
	} else {
		c = cache.NewMemory(cfg.Cache.MemoryMaxEntries)
	}
	defer c.Close()
	// Every request's database work ends within database.request_timeout;
	// an unreachable database answers 503 with Retry-After, not a hang.
	bounded := notes.NewBoundedStore(notes.NewBunStore(db), cfg.Database.RequestTimeout, database.Unavailable)
	store := notes.NewCachedStore(bounded, c, cfg.Cache.TTL, logger)

	// Health: every dependency the service is configured to use gets a check.
	hh := healthHandler(cfg, db, c, logs, logger)
	if cfg.Status.AllowQueryToken {
		logger.Warn("status.allow_query_token is on: tokens in URLs end up in proxy and browser histories; prefer the Authorization header")
	}
	if len(cfg.Status.Tokens) == 0 {
		logger.Warn("no status token configured: GET /status answers 503 until status.tokens is set")
	}

	// HTTP: every timeout set, because net/http has none by default.
	srv := &http.Server{
		Handler: server.New(server.Options{
			Logger: logger, Notes: store, MaxBodyBytes: cfg.HTTP.MaxBodyBytes,
			DefaultPageSize: cfg.Notes.DefaultPageSize, MaxPageSize: cfg.Notes.MaxPageSize, Version: version,
			Health: hh,
		}),
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       cfg.HTTP.ReadTimeout,
		WriteTimeout:      cfg.HTTP.WriteTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(cfg.HTTP.Host, strconv.Itoa(cfg.HTTP.Port)))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	logger.Info("http server listening", "addr", ln.Addr().String(), "cache", c.Kind(), "database", database.Dialect(db))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	// Shutdown: stop accepting, let in-flight requests finish, then close.
	select {
	case err := <-served:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	// Drain: fail readiness first and keep serving for a moment, so load
	// balancers take this instance out before its listener closes.
	hh.SetDraining()
	if cfg.HTTP.DrainDelay > 0 {
		logger.Info("draining: /readyz answers 503 while requests are still served", "delay", cfg.HTTP.DrainDelay.String())
		select {
		case err := <-served:
			return fmt.Errorf("http server: %w", err)
		case <-time.After(cfg.HTTP.DrainDelay):
		}
	}
	logger.Info("shutting down: draining in-flight requests", "timeout", cfg.HTTP.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("shutdown: requests still running after %s were cut off", cfg.HTTP.ShutdownTimeout)
		}
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("stopped cleanly")
	return nil
}

// healthHandler registers a check for every dependency this configuration
// uses. A later dependency plugs in with one more runner.Register call.
func healthHandler(cfg config.Config, db *bun.DB, c cache.Cache, logs *logging.Logging, logger *slog.Logger) *health.Handler {
	st := cfg.Status
	runner := health.NewRunner(logger, st.CacheTTL, st.Deadline,
		health.DatabaseCheck(db, st.DatabaseTimeout, logger),
		health.MigrationsCheck(db, st.DatabaseTimeout, logger),
		health.CacheCheck(c, st.CacheTimeout, logger),
	)
	if cfg.Email.Enabled {
		runner.Register(health.SMTPCheck(cfg.Email.SMTPHost, cfg.Email.SMTPPort, smtpTLS(cfg.Email), st.SMTPTimeout, logger))
	}
	if sl := cfg.Log.Syslog; sl.Enabled {
		// Connecting proves something only for a remote daemon over TCP; for a
		// local socket or UDP the check watches the dropped count alone.
		addr, tlsConf := "", (*tls.Config)(nil)
		if sl.Network == "tcp" || sl.Network == "tcp+tls" {
			addr = sl.Address
		}
		if sl.Network == "tcp+tls" {
			tlsConf = logs.SyslogTLS() // the sink's own: same CA bundle, same server name
		}
		runner.Register(health.SyslogCheck(addr, tlsConf, func() health.SyslogStats {
			return health.SyslogStats{Dropped: logs.SyslogStats().Dropped}
		}, st.SyslogTimeout, logger))
	}
	if cfg.Backup.CheckOn(cfg.Environment) {
		runner.Register(backup.AgeCheck(db, cfg.Backup.WarnAfter, cfg.Backup.FailAfter, time.Now))
	}
	if database.Dialect(db) == "sqlite" {
		// The file database.url names when it is a sqlite: URL, else database.sqlite_path.
		dir := filepath.Dir(database.SQLiteFile(dbOptions(cfg)))
		runner.Register(health.DiskCheck(dir, st.DiskWarnPercent, st.DiskFailPercent, logger))
	}
	// Readiness asks one thing: can this instance serve? That is the database.
	ready := health.NewRunner(logger, time.Second, st.DatabaseTimeout, health.DatabaseCheck(db, st.DatabaseTimeout, logger))
	return health.NewHandler(runner, health.HandlerOptions{
		Info:   health.Info{Version: version, ReleaseID: revision(), ServiceID: cfg.Service.Name, Description: cfg.Service.Description},
		Tokens: st.Tokens, AllowQueryToken: st.AllowQueryToken, CacheTTL: st.CacheTTL, Ready: ready,
	})
}

// reloadLevelOnSIGHUP reloads the configuration (same file, same
// environment) on SIGHUP and applies its log level; the change is logged.
// An invalid configuration leaves the level as it was, with a warning.
// Other keys take effect at the next restart.
func reloadLevelOnSIGHUP(logs *logging.Logging, logger *slog.Logger, file string, getenv func(string) string) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-hup:
				l, err := config.Load(file, getenv, os.ReadFile)
				if err != nil {
					logger.Warn("SIGHUP: configuration invalid; log level unchanged", "error", err.Error())
					continue
				}
				if err := logs.SetLevel(l.Log.Level); err != nil {
					logger.Warn("SIGHUP: log level unchanged", "error", err.Error())
				}
			}
		}
	}()
	return func() { signal.Stop(hup); close(done) }
}

// closeLogs flushes the syslog queue at exit, within a deadline.
func closeLogs(logs *logging.Logging, stdout io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := logs.Close(ctx); err != nil {
		fmt.Fprintf(stdout, "{\"level\":\"WARN\",\"msg\":\"log flush at exit incomplete\",\"error\":%q}\n", err.Error())
	}
}

// smtpTLS is the TLS configuration the SMTP check dials with: on port 465
// the relay speaks implicit TLS, as internal/alert dials it, and a plain
// EHLO there would hang; elsewhere nil (plain EHLO).
func smtpTLS(e config.Email) *tls.Config {
	if !alert.ImplicitTLS(e) {
		return nil
	}
	return &tls.Config{ServerName: e.SMTPHost, MinVersion: tls.VersionTLS12}
}

// flushAlerts gives queued e-mails until timeout to go out at shutdown.
func flushAlerts(rep *alert.Reporter, timeout time.Duration, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := rep.Close(ctx); err != nil {
		logger.Warn("alert e-mails not flushed at shutdown", "error", err.Error())
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"

	"github.com/prodready/service/internal/alert"
	"github.com/prodready/service/internal/backup"
	"github.com/prodready/service/internal/cache"
	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/database"
	"github.com/prodready/service/internal/drain"
	"github.com/prodready/service/internal/health"
	"github.com/prodready/service/internal/logging"
	"github.com/prodready/service/internal/monitoring"
	"github.com/prodready/service/internal/resource"
	"github.com/prodready/service/internal/resources"
	"github.com/prodready/service/internal/server"
	"github.com/prodready/service/internal/shed"
	"github.com/prodready/service/internal/workers"
)

// serve runs the HTTP service until ctx is cancelled, then shuts down
// gracefully: in-flight requests get up to http.shutdown_timeout to finish.
// getenv is kept to reload the configuration on SIGHUP; args is the command
// line a master gives its workers.
//
// With http.workers above 1 this process is the master instead: it holds
// the socket and runs the workers (superviseWorkers), each of which runs
// the steps below. The start-up sequence is the list of steps, run in order;
// a step that fails stops the sequence, and what the earlier steps opened is
// closed in reverse order. A new dependency is one more step.
func serve(ctx context.Context, l *config.Loaded, getenv func(string) string, stdout, stderr io.Writer, args []string) (err error) {
	s := &service{cfg: l.Config, loaded: l, getenv: getenv, stdout: stdout, stderr: stderr, args: args}
	defer func() { s.stop(err) }()
	if s.worker, s.isWorker, err = workers.FromEnv(getenv); err != nil {
		return err
	}
	if !s.isWorker && s.cfg.HTTP.Workers > 1 {
		if err := s.startLogging(ctx); err != nil {
			return err
		}
		return s.superviseWorkers(ctx)
	}
	defer s.watchRetire()()
	startCtx, started := s.abortStartOnRetire(ctx)
	for _, start := range []func(context.Context) error{
		s.startLogging,    // first: every later step logs
		s.startAlerts,     // before anything that can fail at run time
		s.startMonitoring, // New Relic: before the database and cache it instruments
		s.openDatabase,    // fail fast: without it the service can do nothing
		s.openCache,       // never fails the start: Redis down means reads go to the database
		s.mountResources,  // the API: each resource's routes, over the database and cache
		s.admitLoad,       // overload shedding in front of the resources
		s.buildHealth,     // a check for every dependency configured above
		s.listen,          // last: accept traffic only when everything is ready
	} {
		if err := start(startCtx); err != nil {
			if started() {
				return nil // retired while starting: the failure is the cancel
			}
			return err
		}
	}
	if started() {
		return nil
	}
	return s.serveUntilDone(ctx)
}

// service is what the start-up steps build, in the order they build it.
type service struct {
	cfg            config.Config
	loaded         *config.Loaded
	getenv         func(string) string
	stdout, stderr io.Writer
	args           []string        // the command line, for the workers of a master
	worker         *workers.Worker // set in a worker process
	isWorker       bool

	logs   *logging.Logging
	logger *slog.Logger
	alerts *alert.Reporter
	agent  *monitoring.Agent
	db     *bun.DB
	cache  cache.Cache
	routes []func(gin.IRouter)
	checks []health.Check // the resources' own, for /status
	shed   *shed.Shedder
	health *health.Handler
	http   *http.Server
	ln     net.Listener
	drain  drain.Drainer  // Connection: close on every answer once stopping
	retire chan os.Signal // a worker's retire signal (watchRetire); nil otherwise

	stops      []func()  // undone in reverse order by stop
	shutdownBy time.Time // end of the shutdown budget, once shutdown began
	exitErr    error     // what serve returns, for the last log record
}

// onStop records f to run when the service stops, before everything
// recorded earlier.
func (s *service) onStop(f func()) { s.stops = append(s.stops, f) }

// stop undoes the start-up steps in reverse order.
func (s *service) stop(err error) {
	s.exitErr = err
	for i := len(s.stops) - 1; i >= 0; i-- {
		s.stops[i]()
	}
}

// startLogging sets up one logger for the whole process. SIGHUP reloads the
// configuration and applies its log level without a restart.
func (s *service) startLogging(context.Context) error {
	host, _ := os.Hostname()
	logs, err := logging.Setup(logging.Options{Config: s.cfg.Log, Stdout: s.stdout, Stderr: s.stderr, Hostname: host})
	if err != nil {
		return err // unreachable after validation; kept so a bad level is never ignored
	}
	s.logs = logs
	s.onStop(func() { closeLogs(logs, s.stdout) })
	s.logger = logs.Logger.With("service", s.cfg.Service.Name)
	if role := s.role(); role != "" {
		s.logger = s.logger.With("worker", role) // which process of a master and its workers said it
	}
	// main prints the error on stderr; the log sinks (syslog, the platform's
	// collector) must learn why the process stopped too. Runs before closeLogs.
	s.onStop(func() {
		if s.exitErr != nil {
			s.logger.Error("service stopped with an error", "error", s.exitErr.Error())
		}
	})
	s.logger.Info("starting", "version", version, "environment", s.cfg.Environment, "config", s.loaded,
		"pid", os.Getpid(), "gomaxprocs", runtime.GOMAXPROCS(0), "cpus", runtime.NumCPU())
	s.onStop(reloadLevelOnSIGHUP(logs, s.logger, s.loaded.File, s.getenv))
	return nil
}

// startAlerts sets up stack-trace e-mails for panics and unhandled 5xx
// errors, queued and sent in the background (a reporter that does nothing
// when email.enabled is off).
func (s *service) startAlerts(context.Context) error {
	rep, err := newAlertReporter(s.cfg, s.logger, s.loaded.SecretValues()...)
	if err != nil {
		return err
	}
	s.alerts = rep
	s.onStop(func() { flushAlerts(rep, s.cfg.Email.FlushTimeout, s.logger) })
	s.logger = slog.New(rep.LogHandler(s.logger.Handler())) // error records can be mailed too (email.on_error_log)
	return nil
}

// openDatabase fails when the database cannot be reached at start, so the
// platform restarts us with backoff instead of running a process that can
// do nothing; it applies migrations when database.migrate_on_start is on.
func (s *service) openDatabase(ctx context.Context) error {
	db, err := database.Open(ctx, dbOptions(s.cfg))
	if err != nil {
		return err
	}
	s.onStop(func() { db.Close() })
	if s.agent.On() {
		db = db.WithQueryHook(s.agent.QueryHook(db)) // a datastore segment per query
	}
	s.db = db
	if s.cfg.Database.MigrateOnStart {
		applied, err := database.Migrate(ctx, db, s.logger, resourceMigrations()...)
		if err != nil {
			return err
		}
		s.logger.Info("migrations applied at start", "applied", applied, "dialect", database.Dialect(db))
	}
	return nil
}

// openCache connects Redis when configured, else an in-memory cache. Redis
// being down never stops the service: reads fall back to an in-process
// cache and the database, and errors are counted.
func (s *service) openCache(ctx context.Context) error {
	cc := s.cfg.Cache
	if cc.RedisURL == "" && s.isWorker {
		s.cache = cache.None{} // a memory cache per worker would serve stale notes
		return nil
	}
	if cc.RedisURL == "" {
		s.cache = cache.NewMemory(cc.MemoryMaxEntries)
		s.onStop(func() { s.cache.Close() })
		return nil
	}
	cache.RouteRedisLogs(s.logger)
	r, err := cache.NewRedis(ctx, cc.RedisURL, cache.RedisOptions{
		KeyPrefix: cc.KeyPrefix, Timeout: cc.Timeout,
		DialTimeout: cc.Timeout, ReadTimeout: cc.Timeout, WriteTimeout: cc.Timeout,
	})
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	r.AddHook(s.agent.RedisHook) // a datastore segment per command (nil when monitoring is off)
	s.onStop(func() { r.Close() })
	if err := r.Ping(ctx); err != nil {
		s.logger.Warn("redis unreachable at start; reads go to the database until it answers", "error", err)
	}
	// After cache.failure_threshold failures in a row Redis is skipped for
	// cache.cooldown: a dead or frozen Redis then costs requests nothing.
	// Meanwhile an in-process LRU stands in, as if no Redis were configured,
	// so the outage does not turn every read into a database read; not in
	// a worker, where it would be one cache per worker, and an update made
	// through one worker would leave the others serving the old note (as
	// without Redis, workers then read the database).
	var fallback cache.Cache
	if !s.isWorker {
		fallback = cache.NewMemory(cc.MemoryMaxEntries)
	}
	s.cache = cache.NewBreaker(r, cache.BreakerOptions{
		Threshold: cc.FailureThreshold, Cooldown: cc.Cooldown, Logger: s.logger, Fallback: fallback,
	})
	return nil
}

// mountResources builds each resource the service serves
// (internal/resources) over the database and cache: its routes, and the
// checks it shows on /status.
func (s *service) mountResources(context.Context) error {
	s.routes, s.checks = resources.All().Mount(resource.Deps{
		Config: s.cfg, DB: s.db, Cache: s.cache, Logger: s.logger, Gauge: s.agent.Gauge,
	})
	return nil
}

// resourceMigrations is each resource's schema, applied, rolled back and
// checked with the service's own (database.CoreMigrations).
func resourceMigrations() []fs.FS { return resources.All().Migrations() }

// readConfig is config.Load with the resources' sections; inspectConfig is
// config.Inspect with them.
func readConfig(path string, getenv func(string) string) (*config.Loaded, error) {
	return config.Load(path, getenv, os.ReadFile, resources.All().Sections()...)
}

func inspectConfig(path string, getenv func(string) string) (*config.Loaded, error) {
	return config.Inspect(path, getenv, os.ReadFile, resources.All().Sections()...)
}

// buildHealth gives every dependency the service is configured to use a
// check on /status, and warns about status settings an operator should know.
func (s *service) buildHealth(context.Context) error {
	s.health = healthHandler(s.cfg, s.db, s.cache, s.logs, s.logger, s.agent, s.alerts,
		append(s.checks, s.shed.Check(), workers.GOMAXPROCSCheck(s.role()))...)
	if s.cfg.Status.AllowQueryToken {
		s.logger.Warn("status.allow_query_token is on: tokens in URLs end up in proxy and browser histories; prefer the Authorization header")
	}
	if len(s.cfg.Status.Tokens) == 0 {
		s.logger.Warn("no status token configured: GET /status answers 503 until status.tokens is set")
	}
	return nil
}

// listen builds the HTTP server, with every timeout set because net/http
// has none by default, and opens its listener.
func (s *service) listen(ctx context.Context) error {
	hc := s.cfg.HTTP
	s.http = &http.Server{
		Handler: s.drain.Handler(server.New(server.Options{
			Logger: s.logger, MaxBodyBytes: hc.MaxBodyBytes, Version: version,
			SendStallTimeout: hc.WriteStallTimeout, WriteTimeout: hc.WriteTimeout,
			StatusLogInterval: s.cfg.Status.RepeatLogInterval,
			FailRoutes:        failRoutes(s.cfg),
			FailRoutesGuard:   s.failRoutesGuard(),
			Health:            s.health, Alerts: alertHooks{s.alerts, s.agent}, Routes: s.routes,
			// APM transactions for everything but the probes, which are polled
			// every few seconds and would drown the real traffic.
			Observe: s.agent.Middleware("/livez", "/readyz"),
			Admit:   []gin.HandlerFunc{s.shed.Middleware()},
		})),
		ConnState: s.drain.ConnState,
		// The connection in each request's context: for how long requests
		// wait unread (shedding) and for sendStall's write deadlines.
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return s.shed.ConnContext(server.ConnContext(ctx, c), c)
		},
		ReadHeaderTimeout: hc.ReadHeaderTimeout,
		ReadTimeout:       hc.ReadTimeout,
		WriteTimeout:      hc.WriteTimeout,
		IdleTimeout:       hc.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		// OPTIONS * goes to the router too (a 404 problem with a request ID),
		// not to net/http's built-in empty 200.
		DisableGeneralOptionsHandler: true,
		ErrorLog:                     slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	if s.isWorker { // the master's socket
		s.ln = s.worker.Listener
		s.logger.Info("worker serving on the master's socket", "addr", s.ln.Addr().String(), "pid", os.Getpid(),
			"gomaxprocs", runtime.GOMAXPROCS(0), "cache", s.cache.Kind(), "database", database.Dialect(s.db))
		return nil
	}
	ln, src, err := s.openListener(ctx)
	if err != nil {
		return err
	}
	s.ln = ln
	s.logger.Info("http server listening", "addr", ln.Addr().String(), "socket", string(src),
		"gomaxprocs", runtime.GOMAXPROCS(0), "cache", s.cache.Kind(), "database", database.Dialect(s.db))
	if failRoutes(s.cfg) {
		level := slog.LevelInfo
		if s.cfg.Environment != config.Development {
			level = slog.LevelWarn
		}
		s.logger.Log(ctx, level, "routes that fail on purpose are served: GET /debug/panic, GET /debug/error (debug.fail_route)")
	}
	return nil
}

// failRoutesGuard is nil in development, where anyone at the keyboard may
// make the service fail; elsewhere (staging with debug.fail_route) a fail
// route needs a status token, checked and rate-limited as on /status, so an
// outsider cannot mail stack traces and spend the alert budget.
func (s *service) failRoutesGuard() func(*gin.Context) (bool, int) {
	if s.cfg.Environment == config.Development {
		return nil
	}
	return s.health.Admit
}

// failRoutes says whether GET /debug/panic and /debug/error are served:
// always in development, in staging with debug.fail_route (production
// refuses the key at load).
func failRoutes(cfg config.Config) bool {
	return cfg.Environment == config.Development || (cfg.Debug.FailRoute && cfg.Environment != config.Production)
}

// serveUntilDone serves until ctx is cancelled, then drains and shuts down:
// stop accepting, let in-flight requests finish, then close. A worker also
// stops when its master retires it (a reload) or is gone, without the drain
// delay: the instance stays ready, the other workers serve.
func (s *service) serveUntilDone(ctx context.Context) error {
	hc := s.cfg.HTTP
	served := make(chan error, 1)
	// net/http's own refusals (a request it cannot parse) as problems too.
	ln := server.Refusals(s.ln, server.RefusalOptions{Logger: s.logger, MaxHeaderBytes: s.http.MaxHeaderBytes})
	go func() { served <- s.http.Serve(ln) }()
	if s.isWorker {
		if err := s.worker.Ready(); err != nil {
			return err
		}
	}
	full := true // a full stop: fail readiness and wait the drain delay first
	select {
	case err := <-served:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	case <-s.retire:
		full = false
		s.logger.Info("retiring: the new workers serve; finishing this worker's requests")
	case <-s.masterGone():
		full = false
		s.logger.Warn("the master process is gone: stopping this worker, nothing supervises it")
	}
	// From now on every answer says Connection: close, so keep-alive clients
	// reconnect (to a listener still open) instead of having their next
	// request cut when the connection closes.
	s.drain.Start()
	if full {
		// Drain: fail readiness first and keep serving for a moment, so load
		// balancers take this instance out before its listener closes.
		s.health.SetDraining()
	}
	if full && hc.DrainDelay > 0 {
		s.logger.Info("draining: /readyz answers 503 while requests are still served", "delay", hc.DrainDelay.String())
		select {
		case err := <-served:
			return fmt.Errorf("http server: %w", err)
		case <-time.After(hc.DrainDelay):
		}
	}
	s.logger.Info("shutting down: draining in-flight requests", "timeout", hc.ShutdownTimeout.String())
	s.shutdownBy = time.Now().Add(hc.ShutdownTimeout)
	sctx, cancel := context.WithDeadline(context.Background(), s.shutdownBy)
	defer cancel()
	// Stop accepting, then give the open connections a moment to close
	// themselves after their next answer; Shutdown then finds only
	// connections that have stayed idle, which no request is using.
	_ = s.ln.Close()
	s.drain.Wait(sctx, connectionsQuietFor, min(connectionsQuietFor+time.Second, hc.ShutdownTimeout/2))
	if err := s.http.Shutdown(sctx); err != nil && !errors.Is(err, net.ErrClosed) {
		_ = s.http.Close()
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("shutdown: requests still running after %s were cut off", hc.ShutdownTimeout)
		}
		return fmt.Errorf("shutdown: %w", err)
	}
	s.logger.Info("stopped cleanly")
	return nil
}

// healthHandler registers a check for every dependency this configuration
// uses; each dependency's package builds its own. A later dependency plugs
// in with one more runner.Register call.
func healthHandler(cfg config.Config, db *bun.DB, c cache.Cache, logs *logging.Logging, logger *slog.Logger, agent *monitoring.Agent, alerts *alert.Reporter, resources ...health.Check) *health.Handler {
	st := cfg.Status
	runner := health.NewRunner(logger, st.CacheTTL, st.Deadline,
		database.Check(db, st.DatabaseTimeout, logger),
		database.MigrationsCheck(db, st.DatabaseTimeout, logger, resourceMigrations()...),
		cache.Check(c, st.CacheTimeout, logger),
	)
	// A failing check is logged when it changes, then at most this often.
	runner.RepeatLogEvery(st.RepeatLogInterval)
	for _, c := range resources { // each resource's own (mountResources), then shedding and GOMAXPROCS
		runner.Register(c)
	}
	if cfg.Email.Enabled {
		runner.Register(alert.SMTPCheck(cfg.Email, st.SMTPTimeout, logger))
		for _, c := range alerts.StatusChecks() { // alerts:sent, alerts:suppressed
			runner.Register(c)
		}
	}
	// A check that turns fail is mailed once, and once when it recovers
	// (throttled and budgeted like every alert); polls in between send nothing.
	runner.OnTransition(alerts.ReportTransition)
	if check, ok := logs.SyslogCheck(st.SyslogTimeout, logger); ok {
		runner.Register(check)
	}
	if agent.On() {
		runner.Register(agent.Check())
	}
	if b := cfg.Backup; b.CheckOn(cfg.Environment) {
		warn, fail := b.Thresholds()
		switch {
		case b.Mode != "continuous":
			runner.Register(backup.AgeCheck(db, warn, fail, time.Now))
		case database.Dialect(db) == "postgres":
			runner.Register(backup.ArchiveCheck(db, warn, fail, b.WarnAfter, b.FailAfter, time.Now))
		default:
			runner.Register(backup.LitestreamCheck(b.LitestreamSocket, database.SQLiteFile(dbOptions(cfg)), warn, fail, time.Now))
		}
	}
	if database.Dialect(db) == "sqlite" {
		// The file database.url names when it is a sqlite: URL, else database.sqlite_path.
		dir := filepath.Dir(database.SQLiteFile(dbOptions(cfg)))
		runner.Register(database.DiskCheck(dir, st.DiskWarnPercent, st.DiskFailPercent, logger))
	}
	// Readiness asks one thing: can this instance serve? That is the database.
	ready := health.NewRunner(logger, time.Second, st.DatabaseTimeout, database.Check(db, st.DatabaseTimeout, logger))
	return health.NewHandler(runner, health.HandlerOptions{
		Info:   health.Info{Version: version, ReleaseID: revision(), ServiceID: cfg.Service.Name, Description: cfg.Service.Description},
		Tokens: st.Tokens, AllowQueryToken: st.AllowQueryToken, CacheTTL: st.CacheTTL, Ready: ready,
		TokenFailureLimit: st.TokenFailureLimit, TokenFailureWindow: st.TokenFailureWindow, Logger: logger,
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
				l, err := readConfig(file, getenv)
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

// flushAlerts gives queued e-mails until timeout to go out at shutdown.
func flushAlerts(rep *alert.Reporter, timeout time.Duration, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := rep.Close(ctx); err != nil {
		logger.Warn("alert e-mails not flushed at shutdown", "error", err.Error())
	}
}

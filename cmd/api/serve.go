package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"

	"github.com/prodready/service/internal/cache"
	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/database"
	"github.com/prodready/service/internal/logging"
	"github.com/prodready/service/internal/notes"
	"github.com/prodready/service/internal/server"
)

// serve runs the HTTP service until ctx is cancelled, then shuts down
// gracefully: in-flight requests get up to http.shutdown_timeout to finish.
func serve(ctx context.Context, l *config.Loaded, stdout io.Writer) error {
	cfg := l.Config

	// Logging: one logger for the whole process, configured once.
	logger, _, err := logging.New(stdout, logging.Options{Level: cfg.Log.Level, Format: cfg.Log.Format})
	if err != nil {
		return err // unreachable after validation; kept so a bad level is never ignored
	}
	logger = logger.With("service", "notes-api")
	logger.Info("starting", "version", version, "environment", cfg.Environment, "config", l)

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
	store := notes.NewCachedStore(notes.NewBunStore(db), c, cfg.Cache.TTL, logger)

	// HTTP: every timeout set, because net/http has none by default.
	srv := &http.Server{
		Handler: server.New(server.Options{
			Logger: logger, Notes: store, MaxBodyBytes: cfg.HTTP.MaxBodyBytes,
			DefaultPageSize: cfg.Notes.DefaultPageSize, MaxPageSize: cfg.Notes.MaxPageSize, Version: version,
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

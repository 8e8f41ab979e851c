package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/listener"
	"github.com/prodready/service/internal/server"
	"github.com/prodready/service/internal/shed"
	"github.com/prodready/service/internal/workers"
)

// connectionsQuietFor is how long, once a process stops accepting, a
// keep-alive connection must have carried no data before Shutdown may close
// it (drain.Drainer.Wait). Each answer now says Connection: close, so a
// client that keeps sending closes its connection after its next answer; a
// client whose last answer came just before the drain began has this long
// to send its next request, and gets an answer instead of a cut. A
// connection idle for longer, in a client's pool, is closed at once: it
// adds nothing to a stop. The wait is at most a second more than this (and
// half of http.shutdown_timeout), so that data that keeps moving cannot take
// the time in-flight requests have to finish.
const connectionsQuietFor = 2 * time.Second

// optionalInt is an int flag that knows whether it was given: a default
// standing for "not given" (it was -1) made --workers -1 mean "not given"
// instead of an error, as -2 is.
type optionalInt struct {
	n   int
	set bool
}

func (o *optionalInt) String() string {
	if o == nil || !o.set {
		return ""
	}
	return strconv.Itoa(o.n)
}

func (o *optionalInt) Set(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("%q is not a whole number", v)
	}
	o.n, o.set = n, true
	return nil
}

// applyWorkersFlag makes `serve --workers N` win over http.workers. The
// source shows in the configuration logged at start.
func applyWorkersFlag(l *config.Loaded, f optionalInt) error {
	if !f.set {
		return nil
	}
	n := f.n
	if n < 0 || n > 128 {
		return usagef("serve: --workers %d: want 0 to 128 (0 or 1: one process)", n)
	}
	l.HTTP.Workers = n
	l.Sources["http.workers"] = "flag --workers"
	return nil
}

// role is what every log record of this process says in "worker": "master",
// the worker's ID, or nothing for a single process.
func (s *service) role() string {
	switch {
	case s.isWorker:
		return strconv.Itoa(s.worker.ID)
	case s.cfg.HTTP.Workers > 1:
		return "master"
	}
	return ""
}

// openListener binds http.host:http.port (with SO_REUSEPORT when
// http.reuse_port is on), unless systemd passed the socket (LISTEN_FDS).
func (s *service) openListener(ctx context.Context) (net.Listener, listener.Source, error) {
	hc := s.cfg.HTTP
	ln, src, err := listener.Listen(ctx, listener.Options{
		Addr: net.JoinHostPort(hc.Host, strconv.Itoa(hc.Port)), ReusePort: hc.ReusePort, Getenv: s.getenv,
	})
	if err != nil {
		return nil, src, err
	}
	if src == listener.ReusePort && !listener.QueuedConnectionsMigrate() {
		s.logger.Warn("http.reuse_port is on but net.ipv4.tcp_migrate_req is 0: connections queued on a stopping process are reset; set it to 1 (sysctl)")
	}
	return ln, src, nil
}

// admitLoad sets up overload shedding (http.max_in_flight, http.queue_size,
// http.queue_timeout, and http.max_read_delay for requests waiting unread; off when
// max_in_flight is 0). The probes and /status are exempt: an overloaded
// instance must still say so.
func (s *service) admitLoad(context.Context) error {
	hc := s.cfg.HTTP
	s.shed = shed.New(shed.Options{
		MaxInFlight: hc.MaxInFlight, QueueSize: hc.QueueSize, QueueTimeout: hc.QueueTimeout,
		MaxReadDelay: hc.MaxReadDelay, Exempt: server.ProbePaths(), Logger: s.logger,
	})
	s.agent.Gauge("HTTP/Shed", func() float64 { return float64(s.shed.Stats().Shed) })
	s.agent.Gauge("HTTP/ReadDelay", func() float64 { return s.shed.Stats().ReadDelay.Seconds() })
	if hc.MaxInFlight == 0 {
		s.logger.Info("overload shedding is off (http.max_in_flight is 0)")
	}
	return nil
}

// watchRetire makes s.retire receive the master's retire signal (a
// reload), from the worker's first moment: Go ignores SIGUSR1 until a
// channel asks for it, and a worker retired while still starting (an
// abandoned reload whose workers wait for the migration lock) used to lose
// the signal and serve later, beside the workers that were meant to stay.
// Nil in a single process, where it never fires.
func (s *service) watchRetire() func() {
	if !s.isWorker {
		return func() {}
	}
	c := earlyRetire
	if c == nil { // run in-process, as tests do: the worker ID is not in the process's environment
		c = make(chan os.Signal, 1)
		signal.Notify(c, workers.RetireSignal)
	}
	s.retire = c
	return func() { signal.Stop(c) }
}

// earlyRetire receives the retire signal from the moment a worker process
// starts (package initialisation), so a retire that comes while it loads
// its configuration is not lost either; nil outside a worker.
var earlyRetire = func() chan os.Signal {
	if os.Getenv(workers.EnvWorkerID) == "" {
		return nil
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, workers.RetireSignal)
	return c
}()

// abortStartOnRetire returns the context of the start-up steps, cancelled
// when this worker is retired or loses its master before it serves, and
// started, to call once the steps are over: it reports whether that
// happened (the worker then stops instead of serving). A step that does
// not return within earlyExitGrace of the cancel (it ignores its context)
// ends the process: nothing has been served, and migrations run in
// transactions, which the database rolls back.
func (s *service) abortStartOnRetire(ctx context.Context) (context.Context, func() (early bool)) {
	if !s.isWorker {
		return ctx, func() bool { return false }
	}
	ctx, cancel := context.WithCancel(ctx)
	done, finished := make(chan struct{}), make(chan struct{})
	var why string
	go func() {
		defer close(finished)
		select {
		case <-s.retire:
			why = "retired by the master before it was ready"
		case <-s.worker.MasterGone():
			why = "the master process is gone before this worker was ready"
		case <-done:
			return
		}
		cancel()
		select {
		case <-done:
		case <-time.After(earlyExitGrace):
			fmt.Fprintf(s.stderr, "api: worker %s; its start did not end within %s: exiting\n", why, earlyExitGrace)
			os.Exit(0)
		}
	}()
	return ctx, func() bool {
		close(done)
		<-finished
		if why != "" && s.logger != nil {
			s.logger.Info("stopping: "+why, "pid", os.Getpid())
		}
		return why != ""
	}
}

// earlyExitGrace is how long a worker retired while starting waits for its
// start-up steps to notice before it exits anyway.
const earlyExitGrace = 5 * time.Second

// masterGone is closed when this worker's master has exited.
func (s *service) masterGone() <-chan struct{} {
	if !s.isWorker {
		return nil
	}
	return s.worker.MasterGone()
}

// superviseWorkers is the master: it gets the socket (systemd's, or bound
// here) and runs http.workers copies of this binary that serve on it, until
// SIGTERM or SIGINT (a graceful stop of every worker) or a crash loop (an
// error: the platform restarts the service). SIGHUP reloads: new workers
// from the binary now at this path and the configuration now in its file
// and environment start, and the old ones retire once every new one serves.
func (s *service) superviseWorkers(ctx context.Context) error {
	hc := s.cfg.HTTP
	exe, err := selfPath()
	if err != nil {
		return err
	}
	ln, src, err := s.openListener(ctx)
	if err != nil {
		return err
	}
	defer ln.Close()
	f, err := listener.File(ln)
	if err != nil {
		return fmt.Errorf("share the listener: %w", err)
	}
	defer f.Close()
	s.logger.Info("http server listening", "addr", ln.Addr().String(), "socket", string(src),
		"workers", hc.Workers, "pid", os.Getpid(), "binary", exe)
	if s.cfg.Cache.RedisURL == "" {
		s.logger.Warn("workers without Redis do not cache notes: a memory cache per worker would serve a note changed through another worker stale; set cache.redis_url to cache")
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return workers.Run(ctx, workers.Options{
		Workers: hc.Workers, Listener: f, Logger: s.logger,
		ReleaseListener: func() { _, _ = f.Close(), ln.Close() },
		Command: func() *exec.Cmd {
			cmd := exec.Command(exe, s.args...) //nolint:gosec,noctx // this binary and its own command line; the master stops workers by signal, not by a context
			cmd.Stdout, cmd.Stderr = s.stdout, s.stderr
			return cmd
		},
		Reload:       s.reloadWorkers,
		ReadyTimeout: hc.WorkerReadyTimeout,
		// Long enough for a worker's whole graceful stop.
		StopTimeout: hc.DrainDelay + hc.ShutdownTimeout + 5*time.Second,
	}, hup)
}

// reloadWorkers re-reads the configuration on SIGHUP and returns how many
// workers to run: --workers if given, else the new http.workers. An invalid
// configuration keeps the running workers.
func (s *service) reloadWorkers() (int, error) {
	l, err := readConfig(s.loaded.File, s.getenv)
	if err != nil {
		return 0, err
	}
	if s.loaded.Sources["http.workers"] == "flag --workers" {
		return s.cfg.HTTP.Workers, nil
	}
	return max(l.HTTP.Workers, 1), nil
}

// selfPath is this binary's path as started, so a reload runs what is at
// that path now (a deploy that replaced the file upgrades the workers).
// /proc/self/exe would keep naming the old, replaced file.
func selfPath() (string, error) {
	p := os.Args[0]
	if filepath.Base(p) == p { // found through PATH
		if lp, err := exec.LookPath(p); err == nil {
			p = lp
		}
	}
	if abs, err := filepath.Abs(p); err == nil {
		if _, err := os.Stat(abs); err == nil { //nolint:gosec // our own argv[0], only checked to exist
			return abs, nil
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find this binary to start workers: %w", err)
	}
	return exe, nil
}

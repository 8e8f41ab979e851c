// Package logging sets up log/slog from configuration, in one place: the
// sinks (stdout, stderr, syslog), each with its own minimum level and format
// under one global level that can change at runtime, and the request_id that
// every record logged with a request's context carries.
//
// stdout and stderr are written directly: they are pipes the platform reads,
// and a platform that stops reading has bigger problems. syslog is a network
// peer that can be slow or gone, so it never slows a request down: records go
// through a bounded queue that drops, and counts, what it cannot hold. See
// docs/LOGGING.md.
package logging

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prodready/service/internal/config"
)

// Options are what Setup needs.
type Options struct {
	// Config is the log section of the configuration.
	Config config.Log
	// Stdout and Stderr are the stream sinks' writers; nil means os.Stdout
	// and os.Stderr.
	Stdout, Stderr io.Writer
	// Hostname goes in syslog headers; empty means os.Hostname().
	Hostname string

	// Level and Format are read by New only, the one-writer shorthand that
	// tests use; Setup reads Config.
	Level, Format string
}

// Logging is the process's logging: the logger to pass around, and the
// controls an operator needs (level at runtime, syslog health, flush).
type Logging struct {
	// Logger writes to every enabled sink. Pass it down; derive with With.
	Logger *slog.Logger
	// streams writes to stdout and stderr only: the dropped-records report
	// must not go to the queue whose overflow it counts, or each report
	// would cause the next.
	streams *slog.Logger

	level   *slog.LevelVar
	levelMu sync.Mutex // one level change at a time, so from/to are logged right

	syslog      *syslogWriter // nil when syslog is off
	stopReports chan struct{}
	reportsDone chan struct{}
	lastDropped uint64 // dropped count at the last report; owned by the reporter
	closeOnce   sync.Once
	closeErr    error
	// held are the stream sinks' writers that may hold access lines
	// (log.access_flush_interval): Close writes what they hold.
	held []*lockedWriter
}

// Setup builds logging from o. It fails only on a configuration error (an
// unknown level, format, network, facility, an unreadable TLS CA file): a
// syslog daemon that cannot be reached at start is logged as a warning and
// retried in the background, and the service runs.
func Setup(o Options) (*Logging, error) {
	c := o.Config
	global, err := ParseLevel(or(c.Level, "info"))
	if err != nil {
		return nil, err
	}
	format := or(c.Format, "json")
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}

	l := &Logging{level: new(slog.LevelVar)}
	l.level.Set(global)
	var sinks []sink
	for _, s := range []struct {
		name string
		cfg  config.LogSink
		w    io.Writer
	}{{"stdout", c.Stdout, o.Stdout}, {"stderr", c.Stderr, o.Stderr}} {
		if !s.cfg.Enabled {
			continue
		}
		sk, err := newSink(s.name, s.cfg.Level, or(s.cfg.Format, format), s.w, c.AccessFlushInterval)
		if err != nil {
			return nil, err
		}
		if sk.fast != nil {
			l.held = append(l.held, sk.fast.w)
		}
		sinks = append(sinks, sk)
	}
	streams := sinks
	if c.Syslog.Enabled {
		sk, err := newSink("syslog", c.Syslog.Level, "", nil, 0)
		if err != nil {
			return nil, err
		}
		hostname := o.Hostname
		if hostname == "" {
			hostname, _ = os.Hostname() // "" becomes "-" (unknown) in the header
		}
		if l.syslog, err = newSyslogWriter(c.Syslog, hostname); err != nil {
			return nil, err
		}
		// config has no log.syslog.format: the body is in log.format.
		if sk.h, err = newSyslogHandler(l.syslog, format); err != nil {
			return nil, fmt.Errorf("log.format: %w", err)
		}
		sinks = append(sinks, sk)
	}
	l.Logger = slog.New(&fanout{global: l.level, sinks: sinks})
	l.streams = slog.New(&fanout{global: l.level, sinks: streams})

	if l.syslog != nil {
		l.syslog.logger = l.Logger
		if err := l.syslog.start(); err != nil {
			l.Logger.Warn("syslog unreachable at start; will retry",
				"network", l.syslog.network, "address", l.syslog.address, "error", err.Error())
		}
		every := c.DroppedReportInterval
		if every <= 0 {
			every = time.Minute
		}
		l.stopReports = make(chan struct{})
		l.reportsDone = make(chan struct{})
		go l.reportDropped(every)
	}
	return l, nil
}

// newSink makes a stream sink writing to w, or, with w nil, a sink whose
// handler the caller sets. A JSON sink holds its info access lines for at
// most delay (lockedWriter).
func newSink(name, level, format string, w io.Writer, delay time.Duration) (sink, error) {
	s := sink{name: name, follow: level == ""}
	if !s.follow {
		var err error
		if s.min, err = ParseLevel(level); err != nil {
			return sink{}, fmt.Errorf("log.%s.level: %w", name, err)
		}
	}
	if w != nil {
		// The slog handler and the access encoder share the writer.
		lw := &lockedWriter{w: w, delay: delay}
		var err error
		if s.h, err = formatHandler(lw, format); err != nil {
			return sink{}, fmt.Errorf("log.%s.format: %w", name, err)
		}
		if format == "json" {
			s.fast = newAccessJSON(lw)
		}
	}
	return s, nil
}

// formatHandler returns slog's JSON or text handler on w. Its own level is
// the lowest there is: the fanout has already decided.
func formatHandler(w io.Writer, format string) (slog.Handler, error) {
	ho := &slog.HandlerOptions{Level: slog.Level(-1 << 10)}
	switch format {
	case "json":
		return slog.NewJSONHandler(w, ho), nil
	case "text":
		return slog.NewTextHandler(w, ho), nil
	}
	return nil, fmt.Errorf("unknown log format %q (want json or text)", format)
}

// SetLevel changes the global minimum level of every logger at once, while
// the process runs (SIGHUP calls it with the reloaded config's log.level).
// The change is logged at warn, as "log level changed" with from and to, at
// the moment the more verbose of the two levels is in force, so it is seen
// whichever way the level moves.
func (l *Logging) SetLevel(level string) error {
	to, err := ParseLevel(level)
	if err != nil {
		return err
	}
	l.levelMu.Lock()
	defer l.levelMu.Unlock()
	from := l.level.Level()
	if from == to {
		return nil
	}
	logChange := func() { l.Logger.Warn("log level changed", "from", levelName(from), "to", levelName(to)) }
	if to > from { // quieter: say so while still loud enough to be heard
		logChange()
		l.level.Set(to)
	} else {
		l.level.Set(to)
		logChange()
	}
	return nil
}

// Level returns the global minimum level: debug, info, warn or error.
func (l *Logging) Level() string { return levelName(l.level.Level()) }

// Close writes the access lines the stream sinks hold, and from then on
// they hold none; it stops the background work and sends what the syslog queue holds,
// within ctx's deadline. Records it could not send are counted as dropped and
// reported in the error. Logging after Close still goes to stdout and stderr;
// syslog records are discarded, uncounted: the sink is gone.
func (l *Logging) Close(ctx context.Context) error {
	l.closeOnce.Do(func() {
		for _, w := range l.held {
			_ = w.stopHolding()
		}
		if l.syslog == nil {
			return
		}
		close(l.stopReports)
		<-l.reportsDone
		l.closeErr = l.syslog.close(ctx)
		l.reportDroppedOnce() // the drops since the last periodic line, on stdout
	})
	return l.closeErr
}

// reportDropped logs, every interval, how many syslog records were dropped
// since the last line, when any were: a quiet counter nobody reads is how
// lost logs go unnoticed. The line goes to stdout and stderr; syslog learns
// of the gap from the "syslog reconnected" line, which carries the total.
func (l *Logging) reportDropped(every time.Duration) {
	defer close(l.reportsDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.reportDroppedOnce()
		case <-l.stopReports:
			return
		}
	}
}

func (l *Logging) reportDroppedOnce() {
	total := l.syslog.dropped.Load()
	if total == l.lastDropped {
		return
	}
	n := total - l.lastDropped
	l.lastDropped = total
	l.streams.Warn("syslog records dropped", "dropped", n, "total", total,
		"network", l.syslog.network, "address", l.syslog.address)
}

// ParseLevel maps a config level name to a slog.Level.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want debug, info, warn or error)", s)
}

// levelName is the config name of a level: debug, info, warn, error.
func levelName(l slog.Level) string { return strings.ToLower(l.String()) }

// New builds a logger writing everything at o.Level and above to w in
// o.Format: Setup with a single stdout sink. The LevelVar changes the level
// at runtime. Tests use it; the service uses Setup.
func New(w io.Writer, o Options) (*slog.Logger, *slog.LevelVar, error) {
	if w == nil {
		return nil, nil, errors.New("logging.New: nil writer")
	}
	l, err := Setup(Options{
		Config: config.Log{Level: o.Level, Format: o.Format, Stdout: config.LogSink{Enabled: true}},
		Stdout: w,
	})
	if err != nil {
		return nil, nil, err
	}
	return l.Logger, l.level, nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

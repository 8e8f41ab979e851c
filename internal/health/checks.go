package health

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/smtp"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/uptrace/bun"

	"github.com/prodready/service/internal/database"
)

// Each constructor below returns one Check. The Output they return is meant
// for monitors (short, no DSN, no credential, no raw driver error); the raw
// error goes to the log, at warn level, with the check's name.

func ms(d time.Duration) float64 { return math.Round(float64(d.Microseconds())/10) / 100 }

// DatabaseCheck makes a real round trip (SELECT 1) and reports its latency.
func DatabaseCheck(db *bun.DB, timeout time.Duration, log *slog.Logger) Check {
	return Check{Name: "database:responseTime", ComponentType: "datastore", Timeout: timeout,
		Run: func(ctx context.Context) Result {
			start := time.Now()
			var one int
			if err := db.NewSelect().ColumnExpr("1").Scan(ctx, &one); err != nil {
				log.WarnContext(ctx, "health: database check failed", "error", err)
				return Result{Status: Fail, Output: "the database did not answer a query (details in the service log)"}
			}
			return Result{Status: Pass, ObservedValue: ms(time.Since(start)), ObservedUnit: "ms"}
		}}
}

// MigrationsCheck fails when the database schema is behind this build.
func MigrationsCheck(db *bun.DB, timeout time.Duration, log *slog.Logger) Check {
	return Check{Name: "database:migrations", ComponentType: "datastore", Timeout: timeout,
		Run: func(ctx context.Context) Result {
			n, err := database.Pending(ctx, db)
			if err != nil {
				log.WarnContext(ctx, "health: migration status unavailable", "error", err)
				return Result{Status: Fail, Output: "could not read the migration status (details in the service log)"}
			}
			if n > 0 {
				return Result{Status: Fail, ObservedValue: n, ObservedUnit: "pending",
					Output: fmt.Sprintf("%d migrations are not applied: run api migrate up", n)}
			}
			return Result{Status: Pass, ObservedValue: 0, ObservedUnit: "pending"}
		}}
}

// Pinger is what the cache check needs: cache.Cache satisfies it.
type Pinger interface {
	Ping(ctx context.Context) error
	Kind() string
}

// CacheCheck pings Redis; the in-memory cache always passes.
func CacheCheck(c Pinger, timeout time.Duration, log *slog.Logger) Check {
	return Check{Name: "cache:responseTime", ComponentType: "datastore", Timeout: timeout,
		Run: func(ctx context.Context) Result {
			if c.Kind() != "redis" {
				return Result{Status: Pass, Output: "in-memory cache"}
			}
			start := time.Now()
			if err := c.Ping(ctx); err != nil {
				log.WarnContext(ctx, "health: redis check failed", "error", err)
				return Result{Status: Fail, Output: "redis did not answer PING; reads fall back to the database"}
			}
			return Result{Status: Pass, ObservedValue: ms(time.Since(start)), ObservedUnit: "ms"}
		}}
}

// SMTPCheck connects to the relay, says EHLO and QUIT: what sending needs,
// without sending anything. With tlsConf not nil the connection starts with
// TLS (implicit TLS, port 465), as the e-mail sender's does.
func SMTPCheck(host string, port int, tlsConf *tls.Config, timeout time.Duration, log *slog.Logger) Check {
	addr := net.JoinHostPort(host, fmt.Sprint(port))
	return Check{Name: "smtp:responseTime", ComponentType: "component", Timeout: timeout,
		Run: func(ctx context.Context) Result {
			start := time.Now()
			if err := smtpHello(ctx, addr, host, tlsConf); err != nil {
				log.WarnContext(ctx, "health: smtp check failed", "addr", addr, "error", err)
				if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
					// the connection's deadline is the check's timeout
					return Result{Status: Fail, Output: fmt.Sprintf("no answer within %s", timeout)}
				}
				return Result{Status: Fail, Output: "the SMTP relay did not complete EHLO; stack-trace e-mails cannot be sent"}
			}
			return Result{Status: Pass, ObservedValue: ms(time.Since(start)), ObservedUnit: "ms"}
		}}
}

func smtpHello(ctx context.Context, addr, host string, tlsConf *tls.Config) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl) // the SMTP dialogue obeys the check's timeout too
	}
	if tlsConf != nil {
		tc := tls.Client(conn, tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			return err
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return err
	}
	return c.Quit()
}

// SyslogStats is what the syslog check reads from the logging sink.
type SyslogStats struct {
	Dropped uint64
}

// SyslogCheck connects to a remote syslog daemon over TCP (or TLS when
// tlsConf is not nil) and warns when the sink has dropped records since
// the last check. With addr empty (a local socket or UDP, where a connect
// proves nothing) it only watches the dropped count.
func SyslogCheck(addr string, tlsConf *tls.Config, stats func() SyslogStats, timeout time.Duration, log *slog.Logger) Check {
	var lastDropped atomic.Uint64 // a timed-out run may overlap the next one
	return Check{Name: "syslog:connection", ComponentType: "component", Timeout: timeout,
		Run: func(ctx context.Context) Result {
			if addr == "" {
				return droppedSince(&lastDropped, stats, Result{Status: Pass})
			}
			start := time.Now()
			var d net.Dialer
			conn, err := d.DialContext(ctx, "tcp", addr)
			if err == nil && tlsConf != nil {
				tc := tls.Client(conn, tlsConf)
				if err = tc.HandshakeContext(ctx); err != nil {
					_ = conn.Close() // a failed handshake (e.g. an untrusted certificate) leaves the socket open
				}
				conn = tc
			}
			if err != nil {
				log.WarnContext(ctx, "health: syslog check failed", "addr", addr, "error", err)
				return Result{Status: Fail, Output: "the syslog daemon is unreachable; records queue, then are dropped and counted"}
			}
			_ = conn.Close()
			return droppedSince(&lastDropped, stats, Result{Status: Pass, ObservedValue: ms(time.Since(start)), ObservedUnit: "ms"})
		}}
}

// droppedSince turns res into a warning when the sink dropped records since the last check.
func droppedSince(last *atomic.Uint64, stats func() SyslogStats, res Result) Result {
	if stats == nil {
		return res
	}
	if d, prev := stats().Dropped, last.Load(); d > prev {
		res.Status, res.Output = Warn, fmt.Sprintf("%d records dropped since the last check", d-prev)
		last.Store(d)
	}
	return res
}

// DiskCheck reports the free space on the file system holding dir: warn
// below warnPct percent free, fail below failPct.
func DiskCheck(dir string, warnPct, failPct int, log *slog.Logger) Check {
	return Check{Name: "disk:free", ComponentType: "system", Timeout: time.Second,
		Run: func(ctx context.Context) Result {
			var st syscall.Statfs_t
			if err := syscall.Statfs(dir, &st); err != nil {
				log.WarnContext(ctx, "health: disk check failed", "dir", dir, "error", err)
				return Result{Status: Fail, Output: "cannot read free space of the data directory"}
			}
			if st.Blocks == 0 {
				return Result{Status: Warn, Output: "the data directory's file system reports no size"}
			}
			free := math.Round(float64(st.Bavail)/float64(st.Blocks)*1000) / 10
			res := Result{Status: Pass, ObservedValue: free, ObservedUnit: "percent"}
			switch {
			case free < float64(failPct):
				res.Status, res.Output = Fail, fmt.Sprintf("less than %d%% free on the data directory's disk", failPct)
			case free < float64(warnPct):
				res.Status, res.Output = Warn, fmt.Sprintf("less than %d%% free on the data directory's disk", warnPct)
			}
			return res
		}}
}

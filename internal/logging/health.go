package logging

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prodready/service/internal/health"
)

// SyslogCheck is the syslog sink's check, and false when syslog is off.
// It dials what the sink dials, with the sink's own settings (over TLS the
// same CA bundle and server name): a local socket that is missing or has
// no daemon behind it fails, as does a TCP port nobody listens on. UDP
// cannot be proved by a dial, so there the check fails while the sink has
// lost its connection (a closed port answers a write with ICMP).
func (l *Logging) SyslogCheck(timeout time.Duration, log *slog.Logger) (health.Check, bool) {
	st := l.SyslogStats()
	if !st.Enabled {
		return health.Check{}, false
	}
	target := SyslogTarget{Network: st.Network, Address: st.Address, TLS: l.SyslogTLS(),
		Dropped:       func() uint64 { return l.SyslogStats().Dropped },
		WriteTimeouts: func() uint64 { return l.SyslogStats().WriteTimeouts }}
	if st.Network == "udp" {
		target.Connected = func() bool { return l.SyslogStats().Connected }
	}
	return SyslogCheck(target, timeout, log), true
}

// SyslogTarget is what a syslog check proves reachable.
type SyslogTarget struct {
	// Network is the sink's: unixgram, unix, tcp and tcp+tls are dialled,
	// udp is not (a dial proves nothing there).
	Network, Address string
	TLS              *tls.Config   // tcp+tls: the handshake is part of the check
	Dropped          func() uint64 // nil: drops are not watched
	Connected        func() bool   // udp: the sink's own view; nil: not consulted
	// WriteTimeouts counts the sink's writes that timed out on an open
	// connection; nil: not watched.
	WriteTimeouts func() uint64
}

// SyslogCheck fails when target cannot be reached, saying where and why,
// or when it can but writes to it timed out since the last check, and warns
// when Dropped has grown since the last check.
func SyslogCheck(target SyslogTarget, timeout time.Duration, log *slog.Logger) health.Check {
	var lastDropped, lastTimeouts atomic.Uint64 // a timed-out run may overlap the next one
	where := target.Network + " " + target.Address
	unreachable := func(ctx context.Context, err error) health.Result {
		health.LogFailure(ctx, log, "health: syslog check failed", "network", target.Network, "address", target.Address, "error", err)
		return health.Result{Status: health.Fail, Output: fmt.Sprintf(
			"the syslog daemon at %s is unreachable: %s; records queue, then are dropped and counted", where, reason(err))}
	}
	return health.Check{Name: "syslog:connection", ComponentType: "component", Timeout: timeout,
		Run: func(ctx context.Context) health.Result {
			if target.Network == "udp" {
				if target.Connected != nil && !target.Connected() {
					return unreachable(ctx, errLastWrite)
				}
				return droppedSince(&lastDropped, target.Dropped, health.Result{Status: health.Pass})
			}
			start := time.Now()
			if err := dialSyslog(ctx, target); err != nil {
				return unreachable(ctx, err)
			}
			// It takes connections; is it reading them? A hung or stopped
			// daemon still does, and is seen once the kernel's buffers towards
			// it are full and the sink's writes time out.
			if target.WriteTimeouts != nil {
				if n, prev := target.WriteTimeouts(), lastTimeouts.Load(); n > prev {
					lastTimeouts.Store(n)
					health.LogFailure(ctx, log, "health: syslog daemon takes no records", "network", target.Network,
						"address", target.Address, "write_timeouts", n-prev)
					return droppedSince(&lastDropped, target.Dropped, health.Result{Status: health.Fail, Output: fmt.Sprintf(
						"the syslog daemon at %s accepts connections but reads nothing: writes to it timed out (log.syslog.write_timeout) %d times since the last check; records queue, then are dropped and counted",
						where, n-prev)})
				}
			}
			return droppedSince(&lastDropped, target.Dropped, health.Result{Status: health.Pass, ObservedValue: health.Milliseconds(time.Since(start)), ObservedUnit: "ms"})
		}}
}

// errLastWrite is the UDP sink's failure: a write the port refused.
var errLastWrite = errors.New("the last write was refused")

// reason says in a few words why a dial failed; the raw error goes to the log.
func reason(err error) string {
	var netErr net.Error
	var certErr *tls.CertificateVerificationError
	switch {
	case errors.Is(err, errLastWrite):
		return "the last write was refused (nothing listens on the port)"
	case errors.Is(err, syscall.ENOENT):
		return "no such socket"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (no daemon reads it)"
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return "permission denied"
	case errors.As(err, &certErr):
		return "its TLS certificate is not trusted"
	case errors.As(err, &netErr) && netErr.Timeout():
		return "no answer within status.syslog_timeout"
	}
	return "cannot connect (the log has the error)"
}

// dialSyslog connects to target once (and shakes hands over TLS), then hangs up.
func dialSyslog(ctx context.Context, target SyslogTarget) error {
	network := target.Network
	if network == "tcp+tls" {
		network = "tcp"
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, target.Address)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }() // a failed handshake (e.g. an untrusted certificate) leaves the socket open
	if target.Network == "tcp+tls" && target.TLS != nil {
		return tls.Client(conn, target.TLS).HandshakeContext(ctx)
	}
	return nil
}

// droppedSince turns res into a warning when the sink dropped records since
// the last check; a failure stays one, saying so too.
func droppedSince(last *atomic.Uint64, dropped func() uint64, res health.Result) health.Result {
	if dropped == nil {
		return res
	}
	if d, prev := dropped(), last.Load(); d > prev {
		last.Store(d)
		if res.Status == health.Fail {
			res.Output += fmt.Sprintf(" (%d dropped since the last check)", d-prev)
			return res
		}
		res.Status, res.Output = health.Warn, fmt.Sprintf("%d records dropped since the last check", d-prev)
	}
	return res
}

package logging

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/prodready/service/internal/health"
)

// SyslogCheck is the syslog sink's check, and false when syslog is off.
// Connecting proves something only for a remote daemon over TCP; for a
// local socket or UDP the check watches the dropped count alone. Over TLS
// it dials with the sink's own settings: same CA bundle, same server name.
func (l *Logging) SyslogCheck(timeout time.Duration, log *slog.Logger) (health.Check, bool) {
	st := l.SyslogStats()
	if !st.Enabled {
		return health.Check{}, false
	}
	addr := ""
	if st.Network == "tcp" || st.Network == "tcp+tls" {
		addr = st.Address
	}
	dropped := func() uint64 { return l.SyslogStats().Dropped }
	return SyslogCheck(addr, l.SyslogTLS(), dropped, timeout, log), true
}

// SyslogCheck connects to a remote syslog daemon over TCP (or TLS when
// tlsConf is not nil) and warns when dropped (nil: not watched) has grown
// since the last check. With addr empty (a local socket or UDP, where a
// connect proves nothing) it only watches the dropped count.
func SyslogCheck(addr string, tlsConf *tls.Config, dropped func() uint64, timeout time.Duration, log *slog.Logger) health.Check {
	var lastDropped atomic.Uint64 // a timed-out run may overlap the next one
	return health.Check{Name: "syslog:connection", ComponentType: "component", Timeout: timeout,
		Run: func(ctx context.Context) health.Result {
			if addr == "" {
				return droppedSince(&lastDropped, dropped, health.Result{Status: health.Pass})
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
				health.LogFailure(ctx, log, "health: syslog check failed", "addr", addr, "error", err)
				return health.Result{Status: health.Fail, Output: "the syslog daemon is unreachable; records queue, then are dropped and counted"}
			}
			_ = conn.Close()
			return droppedSince(&lastDropped, dropped, health.Result{Status: health.Pass, ObservedValue: health.Milliseconds(time.Since(start)), ObservedUnit: "ms"})
		}}
}

// droppedSince turns res into a warning when the sink dropped records since the last check.
func droppedSince(last *atomic.Uint64, dropped func() uint64, res health.Result) health.Result {
	if dropped == nil {
		return res
	}
	if d, prev := dropped(), last.Load(); d > prev {
		res.Status, res.Output = health.Warn, fmt.Sprintf("%d records dropped since the last check", d-prev)
		last.Store(d)
	}
	return res
}

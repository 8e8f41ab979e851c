package alert

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/smtp"
	"time"

	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/health"
)

// SMTPCheck connects to the relay e names, says EHLO and QUIT: what
// sending needs, without sending anything. On implicit TLS (port 465) the
// connection starts with TLS, as the sender's does; a plain EHLO there
// would hang.
func SMTPCheck(e config.Email, timeout time.Duration, log *slog.Logger) health.Check {
	return smtpCheck(e.SMTPHost, e.SMTPPort, checkTLS(e), timeout, log)
}

// checkTLS is the TLS configuration the SMTP check dials with: on implicit
// TLS, as the sender dials; elsewhere nil (plain EHLO).
func checkTLS(e config.Email) *tls.Config {
	if !ImplicitTLS(e) {
		return nil
	}
	return &tls.Config{ServerName: e.SMTPHost, MinVersion: tls.VersionTLS12}
}

// smtpCheck is SMTPCheck with the TLS configuration given (nil: plain EHLO).
func smtpCheck(host string, port int, tlsConf *tls.Config, timeout time.Duration, log *slog.Logger) health.Check {
	addr := net.JoinHostPort(host, fmt.Sprint(port))
	return health.Check{Name: smtpCheckName, ComponentType: "component", Timeout: timeout,
		Run: func(ctx context.Context) health.Result {
			start := time.Now()
			if err := smtpHello(ctx, addr, host, tlsConf); err != nil {
				health.LogFailure(ctx, log, "health: smtp check failed", "addr", addr, "error", err)
				if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
					// the connection's deadline is the check's timeout
					return health.Result{Status: health.Fail, Output: fmt.Sprintf("no answer within %s", timeout)}
				}
				return health.Result{Status: health.Fail, Output: "the SMTP relay did not complete EHLO; stack-trace e-mails cannot be sent"}
			}
			return health.Result{Status: health.Pass, ObservedValue: health.Milliseconds(time.Since(start)), ObservedUnit: "ms"}
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

// StatusChecks show the reporter's counters on /status, so an operator
// sees that alerts go out and what the budget held back without reading
// the log: alerts:sent (observedValue: mails sent since start) and
// alerts:suppressed (mails the budget held back since start). They are
// figures, and pass, but for one case: alerts:sent warns while the last
// mail tried failed. smtp:responseTime only greets the relay, so a relay
// that answers but refuses every mail (a wrong password, a recipient it
// rejects) would otherwise show nowhere on /status but the failed count.
func (r *Reporter) StatusChecks() []health.Check {
	figure := func(name string, read func(Stats) (uint64, health.Status, string)) health.Check {
		return health.Check{Name: name, ComponentType: "component", Run: func(context.Context) health.Result {
			n, status, out := read(r.Stats())
			return health.Result{Status: status, ObservedValue: n, ObservedUnit: "mails", Output: out}
		}}
	}
	return []health.Check{
		figure("alerts:sent", func(s Stats) (uint64, health.Status, string) {
			out := fmt.Sprintf("%d sent (%d of them digests), %d failed, %d dropped, %d queued",
				s.Sent, s.Digests, s.Failed, s.Dropped, s.Queued)
			if !s.LastErrorAt.IsZero() && s.LastErrorAt.After(s.LastSentAt) {
				return s.Sent, health.Warn, out + "; the last mail tried failed at " +
					s.LastErrorAt.UTC().Format(time.RFC3339) + ": " + s.LastError
			}
			return s.Sent, health.Pass, out
		}),
		figure("alerts:suppressed", func(s Stats) (uint64, health.Status, string) {
			return s.Suppressed, health.Pass, fmt.Sprintf("%d held back by the budget (%d not yet listed in a mail), %d repeats throttled",
				s.Suppressed, s.Held, s.Throttled)
		}),
	}
}

package logging

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prodready/service/internal/config"
)

// The syslog writer: a bounded queue that the logging goroutines fill without
// ever waiting, and one goroutine that empties it onto the connection,
// reconnecting with backoff when the daemon goes away. A request never waits
// for syslog: when the queue is full the record is dropped and counted.

// Reconnect backoff: the first retry after about backoffMin, doubling up to
// backoffMax, each wait jittered so that many instances do not reconnect to a
// restarted daemon in the same instant.
const (
	backoffMin = 100 * time.Millisecond
	backoffMax = 30 * time.Second
)

// SyslogStats is the syslog sink's health, for the status route and tests.
// The counters only grow.
type SyslogStats struct {
	Enabled   bool `json:"enabled"`
	Connected bool `json:"connected"`
	// Queued is how many records wait to be sent now.
	Queued int `json:"queued"`
	// Sent counts messages written to the connection.
	Sent uint64 `json:"sent"`
	// Dropped counts records lost: queue full, not sent by Close's deadline,
	// or failed twice.
	Dropped uint64 `json:"dropped"`
	// Errors counts failed connection attempts and failed writes.
	Errors uint64 `json:"errors"`
	// Reconnects counts connections made after a failure.
	Reconnects uint64 `json:"reconnects"`
	Network    string `json:"network"`
	Address    string `json:"address"`
	// WriteTimeouts counts writes that found the connection open but the
	// daemon not reading within log.syslog.write_timeout: a daemon that is
	// hung or stopped (it still takes connections) shows here once the
	// kernel's buffers towards it are full.
	WriteTimeouts uint64 `json:"write_timeouts"`
}

// SyslogTLS is the TLS configuration the syslog sink dials with (nil unless
// log.syslog.network is tcp+tls), so a health check can dial the same way.
func (l *Logging) SyslogTLS() *tls.Config {
	if l.syslog == nil || l.syslog.tls == nil {
		return nil
	}
	return l.syslog.tls.Clone()
}

// SyslogStats reports the syslog sink's state; Enabled is false when
// log.syslog.enabled is.
func (l *Logging) SyslogStats() SyslogStats {
	w := l.syslog
	if w == nil {
		return SyslogStats{}
	}
	return SyslogStats{
		Enabled:       true,
		Connected:     w.connected.Load(),
		Queued:        len(w.queue),
		Sent:          w.sent.Load(),
		Dropped:       w.dropped.Load(),
		Errors:        w.errors.Load(),
		Reconnects:    w.reconnects.Load(),
		Network:       w.network,
		Address:       w.address,
		WriteTimeouts: w.timeouts.Load(),
	}
}

type syslogWriter struct {
	network, address string
	timeout          time.Duration
	tls              *tls.Config // tcp+tls only
	dial             func(context.Context) (net.Conn, error)
	format           *syslogFormat
	queue            chan []byte
	logger           *slog.Logger // for connection lost/regained lines; set before start

	ctx     context.Context // cancelled when Close's deadline passes
	cancel  context.CancelFunc
	closed  atomic.Bool
	closing chan struct{} // closed by close: send what is queued, then stop
	stopped chan struct{} // closed when run returns
	unsent  int           // records given up at Close's deadline; written by run before stopped

	connMu    sync.Mutex // guards conn against close's abort
	conn      net.Conn
	connected atomic.Bool

	// Only run (and start, before run) touch these.
	// wait is the backoff before the next dial, 0 after a good write; but
	// after a write timed out, only once a connection has lasted ten write
	// timeouts: a daemon that takes connections but reads nothing (each new
	// one holds a kernel buffer's worth, then times out) is redialled ever
	// more slowly, not every second.
	wait        time.Duration
	timedOut    bool
	downSince   time.Time // zero while connected
	connectedAt time.Time

	sent, dropped, errors, reconnects, timeouts atomic.Uint64
}

func newSyslogWriter(c config.LogSyslog, hostname string) (*syslogWriter, error) {
	network := or(c.Network, "unixgram")
	f, err := newSyslogFormat(or(c.Protocol, "rfc5424"), or(c.Facility, "local0"), network, hostname, c.AppName, os.Getpid())
	if err != nil {
		return nil, err
	}
	w := &syslogWriter{
		network: network,
		address: c.Address,
		timeout: c.WriteTimeout,
		format:  f,
		queue:   make(chan []byte, max(c.QueueSize, 1)),
		closing: make(chan struct{}),
		stopped: make(chan struct{}),
	}
	if w.timeout <= 0 {
		w.timeout = time.Second
	}
	// write_timeout also bounds each connection attempt, TLS handshake included.
	d := &net.Dialer{Timeout: w.timeout}
	switch network {
	case "tcp+tls":
		tc, err := tlsConfig(c)
		if err != nil {
			return nil, err
		}
		w.tls = tc
		td := &tls.Dialer{NetDialer: d, Config: tc}
		w.dial = func(ctx context.Context) (net.Conn, error) { return td.DialContext(ctx, "tcp", w.address) }
	default:
		w.dial = func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, network, w.address) }
	}
	return w, nil
}

// tlsConfig verifies the daemon's certificate against tls_ca_file, or the
// system roots when it is empty, for the host in the address.
func tlsConfig(c config.LogSyslog) (*tls.Config, error) {
	host, _, err := net.SplitHostPort(c.Address)
	if err != nil {
		return nil, fmt.Errorf("log.syslog.address: tcp+tls needs host:port: %w", err)
	}
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if c.TLSCAFile != "" {
		pem, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("log.syslog.tls_ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("log.syslog.tls_ca_file: no PEM certificate in %s", c.TLSCAFile)
		}
	}
	return tc, nil
}

// start connects once, synchronously, so that Setup can warn when the daemon
// is unreachable, then starts the writer goroutine, which retries.
func (w *syslogWriter) start() error {
	w.ctx, w.cancel = context.WithCancel(context.Background())
	conn, err := w.dial(w.ctx)
	if err != nil {
		w.errors.Add(1)
		w.wait = backoffMin
		w.downSince = time.Now()
	} else {
		w.setConn(conn)
	}
	go w.run()
	return err
}

func (w *syslogWriter) full() bool { return len(w.queue) == cap(w.queue) }

// enqueue never blocks: a record the queue cannot take is dropped and counted.
func (w *syslogWriter) enqueue(msg []byte) {
	if w.closed.Load() {
		return
	}
	select {
	case w.queue <- msg:
	default:
		w.dropped.Add(1)
	}
}

// run is the one goroutine that writes to the daemon. A message whose write
// fails is tried once more on a new connection (datagram sockets report a
// vanished receiver on the next write), then dropped.
func (w *syslogWriter) run() {
	defer close(w.stopped)
	defer w.disconnect()
	var msg []byte
	retried := false
	for {
		if msg == nil {
			select {
			case msg = <-w.queue:
			case <-w.closing:
				select {
				case msg = <-w.queue:
				default:
					return // everything queued was sent
				}
			}
		}
		if !w.connect() {
			w.giveUp(msg)
			return
		}
		if err := w.write(msg); err != nil {
			w.errors.Add(1)
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				w.timeouts.Add(1)
				w.timedOut = true
			}
			w.lost(err)
			if retried {
				w.dropped.Add(1)
				msg, retried = nil, false
			} else {
				retried = true
			}
			continue
		}
		w.sent.Add(1)
		msg, retried = nil, false
		// The connection has proven itself: a write went through, and after
		// a timeout it has lasted ten more. Only then is the outage over and
		// said to be (a daemon that accepts connections and reads nothing
		// takes the first writes into the kernel's buffer, and a line at
		// each dial said "reconnected" while it was still hung).
		if proven := !w.timedOut || time.Since(w.connectedAt) >= 10*w.timeout; proven {
			w.wait, w.timedOut = 0, false
			if !w.downSince.IsZero() {
				w.logger.Info("syslog reconnected", "network", w.network, "address", w.address,
					"down_for", time.Since(w.downSince).Round(time.Millisecond).String(), "dropped_total", w.dropped.Load())
				w.downSince = time.Time{}
			}
		}
	}
}

// connect returns with a connection, dialling with backoff while there is
// none, or false once Close's deadline has passed.
func (w *syslogWriter) connect() bool {
	for w.ctx.Err() == nil && !w.connected.Load() {
		if w.wait > 0 {
			t := time.NewTimer(jitter(w.wait))
			select {
			case <-t.C:
			case <-w.ctx.Done():
				t.Stop()
				return false
			}
		}
		conn, err := w.dial(w.ctx)
		if err != nil {
			w.errors.Add(1)
			w.wait = nextBackoff(w.wait)
			continue
		}
		w.setConn(conn)
		w.connectedAt = time.Now()
		w.reconnects.Add(1)
	}
	return w.ctx.Err() == nil
}

func (w *syslogWriter) write(msg []byte) error {
	w.connMu.Lock()
	conn := w.conn
	w.connMu.Unlock()
	if err := conn.SetWriteDeadline(time.Now().Add(w.timeout)); err != nil {
		return err
	}
	_, err := conn.Write(msg)
	return err
}

// lost drops the broken connection and logs the outage once, when it starts.
func (w *syslogWriter) lost(err error) {
	w.disconnect()
	w.wait = nextBackoff(w.wait)
	if w.downSince.IsZero() {
		w.downSince = time.Now()
		w.logger.Warn("syslog connection lost; reconnecting", "network", w.network, "address", w.address,
			"error", err.Error())
	}
}

func (w *syslogWriter) setConn(conn net.Conn) {
	w.connMu.Lock()
	w.conn = conn
	w.connMu.Unlock()
	w.connected.Store(true)
}

func (w *syslogWriter) disconnect() {
	w.connMu.Lock()
	if w.conn != nil {
		_ = w.conn.Close()
		w.conn = nil
	}
	w.connMu.Unlock()
	w.connected.Store(false)
}

// giveUp counts msg and everything still queued as dropped, at Close's deadline.
func (w *syslogWriter) giveUp(msg []byte) {
	n := 0
	if msg != nil {
		n++
	}
	for len(w.queue) > 0 { // run is the only reader: this cannot block
		<-w.queue
		n++
	}
	w.unsent = n
	w.dropped.Add(uint64(n))
}

// close sends what is queued within ctx's deadline and stops run. Records
// logged from now on are discarded.
func (w *syslogWriter) close(ctx context.Context) error {
	w.closed.Store(true)
	close(w.closing)
	select {
	case <-w.stopped:
	case <-ctx.Done():
		w.cancel()
		// Unblock a write in progress at once instead of at its deadline.
		w.connMu.Lock()
		if w.conn != nil {
			_ = w.conn.Close()
		}
		w.connMu.Unlock()
		<-w.stopped
	}
	w.cancel()
	if w.unsent > 0 {
		return fmt.Errorf("syslog: %d records not sent before the deadline: %w", w.unsent, ctx.Err())
	}
	return nil
}

// nextBackoff doubles d within [backoffMin, backoffMax].
func nextBackoff(d time.Duration) time.Duration {
	return min(max(2*d, backoffMin), backoffMax)
}

// jitter returns a random duration in [d/2, d].
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1) //nolint:gosec // spreading retries needs no cryptographic randomness
}

// Package drain lets an http.Server stop without cutting keep-alive
// requests.
//
// http.Server.Shutdown closes idle keep-alive connections at once. A client
// that is just then sending its next request on one sees the connection
// close with no answer: the request is cut, although the server meant to
// finish everything. The fix is to tell clients first: while draining, every
// response carries "Connection: close", so each client closes its
// connection after the answer it is reading and opens a new one for the next
// request (to another instance, or to the same socket's next owner).
//
// What is left are connections whose last answer went out before the drain
// began, and so did not say close. Most are idle in a client's pool and can
// be closed; but one whose client got its answer a moment ago is about to
// carry the next request, and closing it then cuts that request. Wait tells
// them apart by asking the kernel when data last moved on each connection:
// Shutdown is called once every connection still open has been quiet for a
// while, so it closes only connections nobody is using.
package drain

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prodready/service/internal/tcpinfo"
)

// Drainer tracks a server's open connections and, once Start is called,
// asks clients to close them. Install both hooks:
//
//	srv.Handler = d.Handler(h)
//	srv.ConnState = d.ConnState
type Drainer struct {
	draining atomic.Bool

	mu      sync.Mutex
	conns   map[net.Conn]struct{} // open connections, to ask when each was last used
	started time.Time             // when Start was called
}

// Handler wraps h: while draining, responses carry Connection: close, which
// net/http honours by closing the connection after the response.
func (d *Drainer) Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// ConnState keeps the set of open connections, whatever their state. It
// does work once when a connection opens and once when it closes, not per
// request. net/http passes the same net.Conn for each state of a
// connection, and none after it is hijacked.
func (d *Drainer) ConnState(c net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		d.mu.Lock()
		if d.conns == nil {
			d.conns = map[net.Conn]struct{}{}
		}
		d.conns[c] = struct{}{}
		d.mu.Unlock()
	case http.StateClosed, http.StateHijacked:
		d.mu.Lock()
		delete(d.conns, c)
		d.mu.Unlock()
	}
}

// Start begins draining: from now on every response closes its connection.
func (d *Drainer) Start() {
	d.mu.Lock()
	if d.started.IsZero() {
		d.started = time.Now()
	}
	d.mu.Unlock()
	d.draining.Store(true)
}

// Draining reports whether Start was called.
func (d *Drainer) Draining() bool { return d.draining.Load() }

// Open is the number of open connections.
func (d *Drainer) Open() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.conns)
}

// Wait waits until no connection is open, or until no data has moved for at
// least quiet on every connection still open, and at most limit (or until
// ctx ends). Clients that keep sending have closed their connections after
// their next answer by then; what is left is idle in a pool, and Shutdown
// closes it without cutting a request. A client whose last answer came just
// before the drain began gets quiet to send its next request, which is
// answered (saying close) instead of cut; a connection idle since well
// before the drain does not make Wait wait. limit keeps a connection on
// which data keeps moving (a stream, an upload), or a kernel that does not
// say, from taking the time Shutdown needs for the requests in flight.
//
// Where the kernel cannot say when a connection was last used (not TCP, not
// Linux, Multipath TCP), it counts as used when Start was called.
func (d *Drainer) Wait(ctx context.Context, quiet, limit time.Duration) {
	bound := time.NewTimer(limit)
	defer bound.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var next time.Time // when to ask the kernel again: not every tick
	for d.Open() > 0 {
		if now := time.Now(); !now.Before(next) {
			q := d.quietFor(now, quiet)
			if q >= quiet {
				return
			}
			next = now.Add(min(quiet-q, 50*time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return
		case <-bound.C:
			return
		case <-tick.C:
		}
	}
}

// quietFor is how long the most recently used open connection has been
// quiet: the time since data last went either way on it. It stops at the
// first connection used within quiet, which alone decides that Wait goes on
// waiting.
func (d *Drainer) quietFor(now time.Time, quiet time.Duration) time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	sinceStart := now.Sub(d.started)
	least := time.Duration(1<<63 - 1)
	for c := range d.conns {
		idle, ok := idleFor(c)
		if !ok {
			idle = sinceStart
		}
		if least = min(least, idle); least < quiet {
			break
		}
	}
	return least
}

// idleFor asks the kernel how long ago data last went over c, either way:
// since its last answer, or since a request arrived that is still being
// served. A Multipath TCP connection is not asked: the kernel answers for
// its first subflow only, and data may be moving on another.
func idleFor(c net.Conn) (time.Duration, bool) {
	if tc, ok := c.(*net.TCPConn); ok {
		if mp, err := tc.MultipathTCP(); err != nil || mp {
			return 0, false
		}
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	sent, recv, ok := tcpinfo.LastData(rc)
	return min(sent, recv), ok
}

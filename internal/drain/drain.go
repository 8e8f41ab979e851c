// Package drain lets an http.Server stop without cutting keep-alive
// requests.
//
// http.Server.Shutdown closes idle keep-alive connections at once. A client
// that is just then sending its next request on one sees the connection
// close with no answer: the request is cut, although the server meant to
// finish everything. The fix is to tell clients first: while draining, every
// response carries "Connection: close", so each client closes its
// connection after the answer it is reading and opens a new one for the next
// request (to another instance, or to the same socket's next owner). Once the
// connections have gone, or a bound has passed, Shutdown finds nothing idle to
// cut.
package drain

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Drainer tracks a server's open connections and, once Start is called,
// asks clients to close them. Install both hooks:
//
//	srv.Handler = d.Handler(h)
//	srv.ConnState = d.ConnState
type Drainer struct {
	draining atomic.Bool
	open     atomic.Int64
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

// ConnState counts the connections that are open, whatever their state.
func (d *Drainer) ConnState(_ net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		d.open.Add(1)
	case http.StateClosed, http.StateHijacked:
		d.open.Add(-1)
	}
}

// Start begins draining: from now on every response closes its connection.
func (d *Drainer) Start() { d.draining.Store(true) }

// Draining reports whether Start was called.
func (d *Drainer) Draining() bool { return d.draining.Load() }

// Open is the number of open connections.
func (d *Drainer) Open() int { return int(d.open.Load()) }

// Wait waits until no connection is open, at most max (or until ctx ends).
// Clients that keep sending have closed theirs after their next answer by
// then; what is left is idle, and Shutdown closes it.
func (d *Drainer) Wait(ctx context.Context, limit time.Duration) {
	t := time.NewTimer(limit)
	defer t.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for d.open.Load() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			return
		case <-tick.C:
		}
	}
}

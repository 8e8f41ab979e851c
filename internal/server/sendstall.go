package server

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/prodready/service/internal/logging"
)

// stallFreeBytes is what a handler can write without ever waiting for its
// client: net/http buffers that much and sends it after the handler has
// returned (and given back its shedding slot).
const stallFreeBytes = 4 << 10

// stallChunk is how much of a larger write goes to the socket under one
// write deadline.
const stallChunk = 32 << 10

// sendStall bounds how long a resource's handler waits for its client to
// take its answer. A write larger than net/http's buffer blocks the handler
// until the kernel accepts it, which a client that reads nothing (or
// shrinks its receive window to a byte) makes last until http.write_timeout
// (30 s), and the handler holds its shedding slot meanwhile: a few dozen
// such clients asking for the largest page held every slot, and every
// other request got 503. Here such a write goes out in chunks, each with a
// deadline of stall (never past the request's write timeout): a client
// that takes nothing for that long has its connection cut, and the slot is
// free. Writes that fit in the buffer, all of the probes' and most
// answers', cost nothing.
func sendStall(stall, writeTimeout time.Duration) gin.HandlerFunc {
	// Pooled: every resource request gets one, and most never need it. Once
	// the handlers have returned, gin allows nothing to use c.Writer.
	pool := sync.Pool{New: func() any { return new(stallWriter) }}
	return func(c *gin.Context) {
		w := pool.Get().(*stallWriter)
		// The connection and the deadline are looked up by the first large
		// write (deadline), which most requests never make.
		*w = stallWriter{ResponseWriter: c.Writer, stall: stall, writeTimeout: writeTimeout, ctx: c.Request.Context()}
		c.Writer = w
		c.Next()
		c.Writer = w.ResponseWriter
		*w = stallWriter{}
		pool.Put(w)
	}
}

// stallWriter is the response writer of sendStall.
type stallWriter struct {
	gin.ResponseWriter
	stall        time.Duration
	writeTimeout time.Duration   // http.write_timeout; zero: none
	ctx          context.Context // the request's, for the two below
	looked       bool            // end and conn are set
	end          time.Time       // the request's write deadline (http.write_timeout); zero: none
	conn         net.Conn        // the connection, from ConnContext; nil: through rc
	rc           *http.ResponseController
}

func (w *stallWriter) Write(p []byte) (int, error) {
	if len(p) <= stallFreeBytes {
		return w.ResponseWriter.Write(p)
	}
	n := 0
	for len(p) > 0 {
		w.deadline()
		m, err := w.ResponseWriter.Write(p[:min(len(p), stallChunk)])
		n += m
		if err != nil {
			return n, err
		}
		p = p[m:]
	}
	return n, nil
}

func (w *stallWriter) WriteString(s string) (int, error) {
	if len(s) <= stallFreeBytes {
		return w.ResponseWriter.WriteString(s)
	}
	return w.Write([]byte(s))
}

// deadline gives the next chunk stall to be taken, within the request's
// write timeout: on the connection itself when ConnContext put it in the
// request's context (middleware such as the New Relic agent's replaces the
// response writer with one that cannot set deadlines), else through the
// writer.
func (w *stallWriter) deadline() {
	now := time.Now()
	if !w.looked {
		w.looked = true
		w.conn, _ = w.ctx.Value(connKey{}).(net.Conn)
		if w.writeTimeout > 0 {
			// From when the request began (requestID's clock read), as
			// net/http's own write deadline runs from when it was read.
			start, ok := logging.RequestStart(w.ctx)
			if !ok {
				start = now
			}
			w.end = start.Add(w.writeTimeout)
		}
	}
	d := now.Add(w.stall)
	if !w.end.IsZero() && d.After(w.end) {
		d = w.end
	}
	if w.conn != nil {
		_ = w.conn.SetWriteDeadline(d)
		return
	}
	if w.rc == nil {
		w.rc = http.NewResponseController(w.ResponseWriter)
	}
	_ = w.rc.SetWriteDeadline(d) // not supported (a test's recorder): the write timeout still bounds it
}

// connKey holds a request's connection in its context (ConnContext).
type connKey struct{}

// ConnContext is for http.Server.ConnContext: it keeps the connection in
// the context of each of its requests, so that sendStall can set its write
// deadline whatever wraps the response writer. One value per connection,
// nothing per request.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

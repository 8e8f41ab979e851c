package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/prodready/service/internal/logging"
	"github.com/prodready/service/internal/problem"
)

// RequestIDHeader carries the request ID both ways: a caller (or a proxy in
// front) may send one to correlate its own logs, and every response has one.
const RequestIDHeader = "X-Request-ID"

// saneRequestID reports whether an incoming ID may be kept: 1 to 128 of
// A-Z, a-z, 0-9 and . _ : -. IDs end up in log lines and response bodies,
// so anything longer, or with spaces, newlines or quotes (log injection),
// is replaced by a fresh ID. A loop rather than the regexp
// ^[A-Za-z0-9._:-]{1,128}$: compiled, its {1,128} is 128 copies of the
// class, about 40 kB that stay on the heap and that every garbage
// collection marks (docs/PERFORMANCE.md).
func saneRequestID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch b := id[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9',
			b == '.', b == '_', b == ':', b == '-':
		default:
			return false
		}
	}
	return true
}

// requestID keeps a sane incoming X-Request-ID or makes a new one, echoes
// it in the response header and stores it in the request context, where the
// logger (logging.New) and problem.Write pick it up, with the time the
// request began.
//
// It runs on every request, so it indexes the header maps with the
// canonical key directly: Get and Set would canonicalize "X-Request-ID"
// (not canonical: "Id") into a new string twice per request.
func requestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		// One clock read for the ID, the access log's duration and
		// sendStall's deadline (logging.WithRequestStart says why).
		start := time.Now()
		var id string
		if v := c.Request.Header[requestIDKey]; len(v) > 0 && saneRequestID(v[0]) {
			id = v[0]
		} else {
			id = newRequestID(start)
		}
		c.Writer.Header()[requestIDKey] = []string{id}
		c.Request = c.Request.WithContext(logging.WithRequestStart(c.Request.Context(), id, start))
		c.Next()
	}
}

// requestIDKey is RequestIDHeader as net/http stores it in a Header map.
var requestIDKey = textproto.CanonicalMIMEHeaderKey(RequestIDHeader)

// newRequestID returns a UUIDv7 (RFC 9562) of the time now: unique, and sortable by time
// to the millisecond, which makes IDs from one incident easy to find
// together. It runs on every request, so it is made here rather than with
// github.com/google/uuid, whose NewV7 takes two locks (its clock sequence
// and its random pool) and whose String encodes it again: 48 bits of Unix
// milliseconds, then 74 random bits, the version and the variant, written
// as hex straight into the string's bytes. The random bits come
// from math/rand/v2, the runtime's per-thread ChaCha8 generator seeded by
// the system: request IDs must be unique, not secret (anyone who sees one
// already sees the request).
func newRequestID(now time.Time) string {
	ms := uint64(now.UnixMilli()) //nolint:gosec // after 1970: positive
	// Version 7 and 12 random bits; then the variant (10) and 62 random bits.
	hi := ms<<16 | 0x7000 | rand.Uint64()&0x0fff                //nolint:gosec // unique, not secret (above)
	lo := rand.Uint64()&0x3fffffffffffffff | 0x8000000000000000 //nolint:gosec // unique, not secret (above)
	var b [36]byte
	appendHex(b[0:8], hi>>32, 8)
	b[8] = '-'
	appendHex(b[9:13], hi>>16, 4)
	b[13] = '-'
	appendHex(b[14:18], hi, 4)
	b[18] = '-'
	appendHex(b[19:23], lo>>48, 4)
	b[23] = '-'
	appendHex(b[24:36], lo, 12)
	return string(b[:])
}

// appendHex writes the low n hex digits of v into dst[:n], most
// significant first.
func appendHex(dst []byte, v uint64, n int) {
	const digits = "0123456789abcdef"
	for i := n - 1; i >= 0; i-- {
		dst[i] = digits[v&0xf]
		v >>= 4
	}
}

// RequestInfo is what an alert says about the request that failed.
type RequestInfo struct {
	Method    string
	Route     string // route template such as /v1/widgets/:id; "" when none matched
	Path      string // the actual request path
	Query     string // the raw query string; the reporter redacts secret-looking parameters
	RequestID string
	UserAgent string
	ClientIP  string
	Headers   http.Header // the request's headers; the reporter redacts credentials
}

// requestInfo describes the request c is serving.
func requestInfo(c *gin.Context) RequestInfo {
	r := c.Request
	return RequestInfo{
		Method: r.Method,
		Route:  c.FullPath(),
		// As the access log shows it: a path parameter such as ;token=...
		// redacted (the query is the reporter's to redact).
		Path:      logging.RedactURI(&url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath}),
		Query:     r.URL.RawQuery,
		RequestID: logging.RequestID(r.Context()),
		UserAgent: r.UserAgent(),
		ClientIP:  clientIP(c),
		Headers:   r.Header,
	}
}

// PanicReport describes one recovered panic for Alerts.ReportPanic.
type PanicReport struct {
	Value any    // what was passed to panic
	Stack []byte // the panicking goroutine's stack
	RequestInfo
}

// recovery turns a panic in a later handler into a 500 problem that carries
// the request ID and nothing else, logs the panic with its stack at error
// level, and reports it to alerts.
//
// http.ErrAbortHandler is re-panicked: it is the standard way for a handler
// to abort a response on purpose, and net/http handles it silently.
func recovery(logger *slog.Logger, alerts Alerts) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v)
			}
			r := c.Request
			report := PanicReport{Value: v, Stack: debug.Stack(), RequestInfo: requestInfo(c)}
			// request_id comes from the context via the logger's handler.
			logger.ErrorContext(r.Context(), "panic serving request",
				"panic", fmt.Sprint(v),
				"stack", string(report.Stack),
				"method", report.Method,
				"route", report.Route,
				"path", report.Path,
			)
			// If the handler had already started the response, Write can
			// only abort the chain; the client sees a truncated response.
			problem.Write(c, problem.Internal())
			alerts.ReportPanic(r.Context(), report)
		}()
		c.Next()
	}
}

// accessLog writes one record per request once it is done: method, route
// template, path (with secret query values redacted), status, duration_ms,
// bytes, client_ip, and request_id from the context. The route template
// groups /v1/widgets/:id requests together; the path says which widget.
//
// The level is info, or warn for a 5xx: the server failed, and an operator
// filtering on warn should see it. A 4xx is the client's doing and stays info.
//
// Probes and the status route are polled every few seconds by machines, so
// logging each would drown the lines people read: /livez and /readyz are not
// logged, and /status only when it fails (status >= 400: a bad token, or a
// check failing), which is when someone will look, and then by the rule of
// statusLogGate: when the answer changes and at most once per interval, with
// a "suppressed" count. An unmatched path such as /livez/ has no route
// template, so it is logged. A request marked Summarized (a 503 of load
// shedding) is left out: it is counted and summarised where it was refused.
func accessLog(logger *slog.Logger, status *statusLogGate) gin.HandlerFunc {
	return func(c *gin.Context) {
		route := c.FullPath()
		if route == "" && c.Request.URL.Path == statusPath {
			route = statusPath // another method's 405 (NoMethod): gated like the rest
		}
		if route == livezPath || route == readyzPath {
			c.Next()
			return
		}
		ctx := c.Request.Context()
		start, ok := logging.RequestStart(ctx) // requestID's clock read
		if !ok {
			start = time.Now()
		}
		// At debug level, a line when the request begins too: a request that
		// hangs shows up in the logs before it finishes, or without finishing.
		// (Enabled first: the arguments would be boxed on every request.)
		if route != statusPath && logger.Enabled(ctx, slog.LevelDebug) {
			logger.DebugContext(ctx, "request started", "method", c.Request.Method, "route", route)
		}
		c.Next()
		if _, summarized := c.Get(summarizedKey); summarized {
			return
		}
		code := c.Writer.Status()
		var skipped int
		if route == statusPath {
			var logIt bool
			if logIt, skipped = status.admit(code); !logIt {
				return
			}
		}
		level := slog.LevelInfo
		if code >= http.StatusInternalServerError {
			level = slog.LevelWarn
		}
		if !logger.Enabled(ctx, level) {
			return
		}
		end := time.Now()
		// logging.LogAccess: a JSON sink writes the record with an encoder
		// made for it, not slog's generic one (docs/PERFORMANCE.md).
		logging.LogAccess(ctx, logger, logging.Access{
			Level:      level,
			Method:     c.Request.Method,
			Route:      route,
			Path:       logging.RedactURI(c.Request.URL),
			Status:     code,
			DurationMS: float64(end.Sub(start).Microseconds()) / 1000,
			Bytes:      bodyBytes(c),
			ClientIP:   clientIP(c),
			Suppressed: skipped,
			Time:       end,
		})
	}
}

// bodyBytes is the size of the body sent: what the handler wrote (gin's
// Size is -1 when nothing was), and none for HEAD, whose body the handler
// writes as for GET and net/http drops.
func bodyBytes(c *gin.Context) int {
	if c.Request.Method == http.MethodHead {
		return 0
	}
	return max(c.Writer.Size(), 0)
}

// clientIP is c.ClientIP() as New sets the engine up (no proxy trusted, so
// the socket's peer), without parsing the address and formatting it again
// for an IPv4 peer, whose address net/http already gives in that form
// (TestClientIP). Anything else goes to gin.
func clientIP(c *gin.Context) string {
	host, _, err := net.SplitHostPort(c.Request.RemoteAddr)
	if err == nil {
		if a, err := netip.ParseAddr(host); err == nil && a.Is4() {
			return host
		}
	}
	return c.ClientIP()
}

// summarizedKey marks a request whose answer is logged in a summary
// instead of a line of its own (Summarized).
const summarizedKey = "server.summarized"

// Summarized leaves the request's access-log line out: the middleware that
// answered it counts such answers and logs them in a rate-limited summary.
// Load shedding does, for its 503s: a line per refused request would cost
// the most exactly when the service has the least to spare, and would
// drown the lines of the requests it served.
func Summarized(c *gin.Context) { c.Set(summarizedKey, true) }

// requestInput checks what every handler would otherwise each have to: a
// query string that does not parse (net/http and gin drop its bad or
// surplus parameters silently, so a wrong value would reach the handler as
// if absent) is 400; a compressed body, which the service does not decode,
// is 415; a body over limit is 413; a body described twice (two
// Content-Type or Content-Encoding headers) is 400.
//
// It reads the whole body (at most limit bytes) before admission control
// and the handler, as a buffering proxy would: a client that sends its
// body slowly then holds only its own connection, never one of the
// http.max_in_flight slots the other clients need. A body still arriving
// at http.read_timeout is 408 with Connection: close; a client gone
// mid-body is 499.
func requestInput(limit int64, refuse func(*gin.Context, problem.Problem)) gin.HandlerFunc {
	return func(c *gin.Context) {
		r := c.Request
		if r.URL.RawQuery != "" {
			if _, err := url.ParseQuery(r.URL.RawQuery); err != nil {
				refuse(c, problem.BadRequest("the query string is malformed: "+err.Error()))
				return
			}
		}
		if r.ContentLength > limit {
			refuse(c, problem.PayloadTooLarge(limit))
			return
		}
		// A request without a body (most GETs) has http.NoBody: nothing to read.
		if r.Body == nil || r.Body == http.NoBody {
			c.Next()
			return
		}
		// One value each for the headers that say how to read the body: with
		// two, this service would read the first and a proxy in front may
		// have read the other (Content-Encoding: identity, then gzip), as
		// duplicate JSON keys would (the notes API refuses those too).
		for _, h := range []string{"Content-Type", "Content-Encoding"} {
			if len(r.Header[h]) > 1 {
				refuse(c, problem.BadRequest(h+" is sent more than once: send it once"))
				return
			}
		}
		if enc := r.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
			refuse(c, problem.UnsupportedMediaType("Content-Encoding "+strconv.Quote(enc)+" is not accepted: send the body uncompressed"))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(c.Writer, r.Body, limit))
		if err != nil {
			var tooLarge *http.MaxBytesError
			var netErr net.Error
			switch {
			case errors.As(err, &tooLarge):
				refuse(c, problem.PayloadTooLarge(tooLarge.Limit))
			case errors.As(err, &netErr) && netErr.Timeout():
				// Checked before the context: net/http cancels it when the
				// read deadline fires, though the client is still there.
				c.Header("Connection", "close")
				refuse(c, problem.RequestTimeout())
			case r.Context().Err() != nil: // the client went away mid-body
				refuse(c, problem.ClientClosed())
			default: // a malformed chunked body, say
				// Not err's text: a reader below may name internal addresses.
				refuse(c, problem.BadRequest("the request body could not be read (a malformed chunked encoding, or a broken connection)"))
			}
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		c.Next()
	}
}

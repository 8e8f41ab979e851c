// Package server builds the HTTP handler: a gin engine with the service's
// middleware and routes. It does not listen; cmd/ wraps the handler in an
// http.Server with timeouts and graceful shutdown.
package server

import (
	"log/slog"

	"github.com/gin-gonic/gin"

	"github.com/prodready/service/internal/health"
	"github.com/prodready/service/internal/notes"
	"github.com/prodready/service/internal/problem"
)

// Options are the server's dependencies and limits.
type Options struct {
	// Logger receives access logs, panics and store failures. Build it with
	// logging.New so records carry the request_id; nil means slog.Default().
	Logger *slog.Logger
	// Notes stores the notes resource. Required.
	Notes notes.Store
	// MaxBodyBytes caps every request body; zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// DefaultPageSize and MaxPageSize bound list pages; zero means 20 and 100.
	DefaultPageSize, MaxPageSize int
	// Version is reported by GET /livez, so a deploy can be checked.
	Version string
	// Health serves /status and /readyz; nil leaves those routes out.
	Health *health.Handler
}

// DefaultMaxBodyBytes is the body limit when Options.MaxBodyBytes is zero:
// a note is at most ~10k characters, so 1 MiB leaves room without letting a
// client make the server buffer arbitrary amounts.
const DefaultMaxBodyBytes = 1 << 20

// New returns the service's http.Handler as a gin engine, so tests and
// extensions can add routes to it.
//
// It panics when o.Notes is nil: a server without its store is a wiring
// bug to catch at startup, not a 500 on the first request.
func New(o Options) *gin.Engine {
	if o.Notes == nil {
		panic("server: Options.Notes is required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}

	// Release mode before gin.New: in debug mode gin prints a warning and
	// every registered route to stdout, bypassing our structured logs. The
	// mode is process-wide (an atomic), which is fine for a server.
	gin.SetMode(gin.ReleaseMode)
	e := gin.New() // not gin.Default(): we bring our own logger and recovery

	// An API should answer 405 with an Allow header, not 404, when the path
	// exists under another method.
	e.HandleMethodNotAllowed = true
	// No 301 from /v1/notes/ to /v1/notes: clients following it would turn
	// a POST into a GET, and a redirect hides the client's typo.
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	// Makes *gin.Context itself usable as a context.Context that falls back
	// to c.Request.Context() (deadline, cancellation, values such as the
	// request ID). Handlers here still pass c.Request.Context() explicitly.
	e.ContextWithFallback = true
	// Trust no proxy: c.ClientIP() is the socket's peer address and
	// X-Forwarded-For is ignored, so a client cannot forge its IP in the
	// logs. Behind a load balancer, set its addresses here (and only those).
	// SetTrustedProxies(nil) cannot fail.
	_ = e.SetTrustedProxies(nil)

	// Order matters; each wraps those after it:
	//   requestID first, so everything below logs with the ID;
	//   accessLog outside recovery, so a request that panicked is still
	//     logged, with the 500 that recovery wrote;
	//   recovery outside bodyLimit and the handlers.
	// engine.Use also applies to the 404 and 405 responses.
	e.Use(
		requestID(),
		accessLog(o.Logger),
		recovery(o.Logger),
		reportErrors(), // inside recovery: a panic is reported once, as a panic
		bodyLimit(o.MaxBodyBytes),
	)
	e.NoRoute(func(c *gin.Context) {
		problem.Write(c, problem.NotFound("no route matches "+c.Request.Method+" "+c.Request.URL.EscapedPath()))
	})
	e.NoMethod(func(c *gin.Context) {
		// gin has already set the Allow header.
		problem.Write(c, problem.MethodNotAllowed(c.Request.Method))
	})

	addRoutes(e, o)
	return e
}

// Package server builds the HTTP handler: a gin engine with the service's
// middleware, its probe and status routes, and whatever resources the wiring
// registers. It imports no resource and no adapter: resources come in as
// route registrations (Options.Routes), alerting as an interface
// (Options.Alerts). It does not listen; cmd/ wraps the handler in an
// http.Server with timeouts and graceful shutdown.
package server

import (
	"log/slog"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/prodready/service/internal/health"
	"github.com/prodready/service/internal/problem"
)

// Options are the server's dependencies and limits. Every field is
// optional: a zero Options serves /livez and answers 404 elsewhere.
type Options struct {
	// Logger receives access logs and panics. Build it with logging.New so
	// records carry the request_id; nil means slog.Default().
	Logger *slog.Logger
	// MaxBodyBytes caps every request body; zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Version is reported by GET /livez, so a deploy can be checked.
	Version string
	// Health serves /status and /readyz; nil leaves those routes out.
	Health *health.Handler
	// StatusLogInterval is how often a /status that keeps failing gets an
	// access-log line (status.repeat_log_interval); zero means a minute.
	StatusLogInterval time.Duration
	// Alerts hears about panics and unhandled server errors; nil reports
	// nothing. See Alerts for what an implementation must do.
	Alerts Alerts
	// Routes are the resources, each registering its own routes (for
	// example notes.Routes). They are mounted after the probe and status
	// routes, in order.
	Routes []func(gin.IRouter)
	// SendStallTimeout bounds how long a resource's handler waits for its
	// client to take a part of its answer (http.write_stall_timeout; zero:
	// only WriteTimeout bounds it); see sendStall.
	SendStallTimeout time.Duration
	// WriteTimeout is the server's http.write_timeout, which no deadline of
	// sendStall goes past.
	WriteTimeout time.Duration
	// Observe is middleware that must see every request whole, such as an
	// APM transaction: it runs right after the request ID is set, outside
	// the access log and panic recovery (see the order in New).
	Observe []gin.HandlerFunc
	// Admit is middleware that decides whether a request reaches its
	// handler, such as load shedding or a rate limit: it runs last, just
	// before the handler, so what it refuses is still recovered, reported
	// and body-limited like any other answer, and logged unless it calls
	// Summarized (shedding does, and logs a rate-limited summary instead).
	Admit []gin.HandlerFunc
	// FailRoutes mounts GET /debug/panic and GET /debug/error, which fail
	// on purpose (debug.go). Never in production.
	FailRoutes bool
	// FailRoutesGuard, when set, must admit a request before a fail route
	// runs: outside development only the operators may make the service
	// fail (and mail a stack trace), or anyone could spend the alert budget
	// and hide a real failure. It says whether the request may pass and, if
	// not, for how many seconds its address is blocked (0: not blocked).
	// The service passes the status route's token check (health.Handler.Admit).
	FailRoutesGuard func(*gin.Context) (ok bool, blockedFor int)
}

// ProbePaths are the routes operators and platforms use to ask how the
// instance is (liveness, readiness, status): admission control (Options.Admit)
// must let them through, so an overloaded instance can still say so.
func ProbePaths() []string { return []string{livezPath, readyzPath, statusPath} }

// DefaultMaxBodyBytes is the body limit when Options.MaxBodyBytes is zero:
// a note is at most ~10k characters, so 1 MiB leaves room without letting a
// client make the server buffer arbitrary amounts.
const DefaultMaxBodyBytes = 1 << 20

// New returns the service's http.Handler as a gin engine, so tests and
// extensions can add routes to it.
//
// The middleware order, the one place it is written down (each wraps all
// that follow it; engine.Use also applies to the 404 and 405 answers):
//
//  1. requestID: everything below logs and answers with the ID.
//  2. Options.Observe, in order: sees the request, its access log and a
//     panic's 500.
//  3. accessLog: outside recovery, so a request that panicked is still
//     logged, with the 500 that recovery wrote.
//  4. recovery: turns a panic below into a 500 and reports it.
//  5. reportErrors: inside recovery, so a panic is reported once, as a
//     panic; reports other server errors.
//  6. requestInput: a malformed query is 400, and every body is capped
//     and read whole before admission, so a slow sender holds no slot.
//  7. Options.Admit, in order: may answer early (503, 429) instead of the
//     handler.
//  8. the route's handler.
func New(o Options) *gin.Engine {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Alerts == nil {
		o.Alerts = NoAlerts{}
	}

	// Release mode before gin.New: in debug mode gin prints a warning and
	// every registered route to stdout, bypassing our structured logs. The
	// mode is process-wide (an atomic), which is fine for a server.
	gin.SetMode(gin.ReleaseMode)
	e := gin.New() // not gin.Default(): we bring our own logger and recovery

	// An API should answer 405 with an Allow header, not 404, when the path
	// exists under another method.
	e.HandleMethodNotAllowed = true
	// No 301 from /v1/widgets/ to /v1/widgets: clients following it would turn
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

	// What the middleware refuses on /status is written as the status
	// route's own health+json (a monitor always gets a body it parses);
	// everywhere else as a problem.
	refuse := problem.Write
	if o.Health != nil {
		refuse = func(c *gin.Context, p problem.Problem) {
			if c.Request.URL.Path == statusPath { // any method: its 405 is health+json too
				o.Health.Refuse(c, p.Status, p.Detail)
				return
			}
			problem.Write(c, p)
		}
	}

	// The order is documented above New; keep the two in step.
	e.Use(requestID())
	e.Use(o.Observe...)
	e.Use(
		accessLog(o.Logger, newStatusLogGate(o.StatusLogInterval)),
		recovery(o.Logger, o.Alerts),
		reportErrors(o.Alerts),
		requestInput(o.MaxBodyBytes, refuse),
	)
	e.Use(o.Admit...)
	e.NoRoute(func(c *gin.Context) {
		problem.Write(c, problem.NotFound("no route matches "+c.Request.Method+" "+c.Request.URL.EscapedPath()))
	})
	// Every other method on /status (POST, TRACE, PROPFIND, any token at
	// all) answers the status route's own 405, still health+json, so a
	// monitor always gets a body it parses.
	var statusMethodNotAllowed gin.HandlerFunc
	if o.Health != nil {
		statusMethodNotAllowed = o.Health.MethodNotAllowed()
	}
	e.NoMethod(func(c *gin.Context) {
		if statusMethodNotAllowed != nil && c.Request.URL.Path == statusPath {
			statusMethodNotAllowed(c)
			return
		}
		// gin has already set the Allow header.
		problem.Write(c, problem.MethodNotAllowed(c.Request.Method))
	})

	addRoutes(e, o)
	return e
}

package health

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
)

// ContentType of every answer of the status route, success or not.
const ContentType = "application/health+json"

// Info describes the service in every answer.
type Info struct {
	Version     string // build version, e.g. v1.4.2
	ReleaseID   string // e.g. the commit
	ServiceID   string // e.g. notes-api
	Description string
}

// Body is the application/health+json document (draft-inadarei-api-health-check).
type Body struct {
	Status      Status                   `json:"status"`
	Version     string                   `json:"version,omitempty"`
	ReleaseID   string                   `json:"releaseId,omitempty"`
	ServiceID   string                   `json:"serviceId,omitempty"`
	Description string                   `json:"description,omitempty"`
	Output      string                   `json:"output,omitempty"`
	Checks      map[string][]CheckResult `json:"checks,omitempty"`
}

// Handler serves the status route and the readiness probe.
type Handler struct {
	runner     *Runner
	info       Info
	tokens     [][32]byte // SHA-256 of each accepted token
	queryToken bool
	maxAge     int
	ready      *Runner // readiness: a smaller set of checks
	draining   atomic.Bool
	guard      *tokenGuard // wrong tokens per client address
}

// HandlerOptions configures NewHandler.
type HandlerOptions struct {
	Info            Info
	Tokens          []string // accepted bearer tokens; none means the route answers 503
	AllowQueryToken bool     // also accept ?token=
	CacheTTL        time.Duration
	Ready           *Runner // checks that decide readiness (the database)
	// A client address that presents TokenFailureLimit wrong or missing
	// tokens within TokenFailureWindow is answered 429 until the window
	// ends; zero means DefaultTokenFailureLimit, DefaultTokenFailureWindow.
	TokenFailureLimit  int
	TokenFailureWindow time.Duration
	// Logger receives the warning when an address is blocked; nil: none.
	Logger *slog.Logger
	// Now is the clock of the token limit; nil means time.Now (tests set it).
	Now func() time.Time
}

// NewHandler returns the status and readiness handlers over runner.
func NewHandler(runner *Runner, o HandlerOptions) *Handler {
	h := &Handler{runner: runner, info: o.Info, queryToken: o.AllowQueryToken,
		maxAge: int(o.CacheTTL / time.Second), ready: o.Ready,
		guard: newTokenGuard(o.TokenFailureLimit, o.TokenFailureWindow, o.Now, o.Logger)}
	for _, t := range o.Tokens {
		h.tokens = append(h.tokens, sha256.Sum256([]byte(t)))
	}
	return h
}

// SetDraining marks the service as shutting down: /readyz answers 503 so
// load balancers stop sending traffic while in-flight requests finish.
func (h *Handler) SetDraining() { h.draining.Store(true) }

// Status serves GET and HEAD /status: 401 without a valid token, 429 for
// an address that sent too many wrong ones (a right token is still
// served: an outsider cannot lock the monitor out), 503 when no token is
// configured, else 200 for pass and warn and 500 for fail.
func (h *Handler) Status() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Header("Cache-Control", "no-store")
		if len(h.tokens) == 0 {
			h.write(c, http.StatusServiceUnavailable, Body{Status: Fail,
				Output: "the status route is disabled: no status token is configured (status.tokens)"})
			return
		}
		// A right token is served even from a blocked address: behind an
		// ingress every client may share one address, and an outsider's
		// wrong guesses must not lock the real monitor out. Tokens are at
		// least 16 characters (config.MinTokenLen), so that a blocked
		// address still learns when a guess is right does not make
		// guessing feasible; the guard limits the wrong ones.
		if ok, blockedFor := h.Admit(c); !ok {
			if blockedFor > 0 {
				c.Header("Retry-After", strconv.Itoa(blockedFor))
				h.write(c, http.StatusTooManyRequests, Body{Status: Fail,
					Output: fmt.Sprintf("too many wrong tokens from this address: retry after %d s", blockedFor)})
				return
			}
			c.Header("WWW-Authenticate", Challenge)
			h.write(c, http.StatusUnauthorized, Body{Status: Fail,
				Output: "a valid token is required: send Authorization: Bearer <token>"})
			return
		}
		rep := h.runner.Run(c.Request.Context())
		code := http.StatusOK
		if rep.Status == Fail {
			code = http.StatusInternalServerError
		}
		c.Header("Cache-Control", fmt.Sprintf("private, max-age=%d", h.maxAge))
		h.write(c, code, Body{Status: rep.Status, Checks: rep.Checks})
	}
}

// Challenge is the WWW-Authenticate value of a 401 for want of a status
// token, on /status and on the other routes Admit guards.
const Challenge = `Bearer realm="status"`

// Admit reports whether the request carries one of the status tokens. A
// wrong or missing one counts against the client's address; once the
// address is blocked, blockedFor is the seconds left (0 while it is not).
// Other routes only the operators may call use it too (the routes that fail
// on purpose, in staging), sharing the one limit on guesses.
func (h *Handler) Admit(c *gin.Context) (ok bool, blockedFor int) {
	if h.authorized(c.Request) { // never with no token configured
		return true, 0
	}
	ip := c.ClientIP()
	if wait, blocked := h.guard.blocked(ip); blocked {
		return false, int(math.Ceil(wait.Seconds()))
	}
	h.guard.fail(ip)
	return false, 0
}

// Refuse answers a request to /status that the server refused before the
// route ran (a malformed query string, a body over the limit), still as
// health+json with the reason as output, so a monitor always parses it.
func (h *Handler) Refuse(c *gin.Context, code int, output string) {
	h.write(c, code, Body{Status: Fail, Output: output})
}

// MethodNotAllowed answers other methods on /status, still as health+json.
func (h *Handler) MethodNotAllowed() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Header("Allow", "GET, HEAD")
		h.write(c, http.StatusMethodNotAllowed, Body{Status: Fail, Output: "method not allowed: use GET or HEAD"})
	}
}

// Readyz serves the readiness probe: 200 when the service can take traffic
// (its database answers and it is not shutting down), 503 otherwise. No
// token, and a minimal body: probes only read the status code.
func (h *Handler) Readyz() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Header("Cache-Control", "no-store")
		if h.draining.Load() {
			c.JSON(http.StatusServiceUnavailable, gin.H{"status": "draining"})
			return
		}
		if h.ready != nil {
			if rep := h.ready.Run(c.Request.Context()); rep.Status == Fail {
				c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable"})
				return
			}
		}
		c.JSON(http.StatusOK, gin.H{"status": "ready"})
	}
}

func (h *Handler) write(c *gin.Context, code int, b Body) {
	b.Version, b.ReleaseID, b.ServiceID, b.Description = h.info.Version, h.info.ReleaseID, h.info.ServiceID, h.info.Description
	c.Abort()
	if c.Request.Method == http.MethodHead {
		c.Header("Content-Type", ContentType)
		c.Status(code)
		return
	}
	c.Render(code, healthJSON{b})
}

// authorized compares the presented token with every configured one in
// constant time (hashing first so lengths leak nothing either).
func (h *Handler) authorized(r *http.Request) bool {
	// The scheme name is case-insensitive (RFC 9110); the token is not.
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	ok = ok && strings.EqualFold(scheme, "Bearer")
	if !ok && h.queryToken {
		tok, ok = r.URL.Query().Get("token"), r.URL.Query().Has("token")
	}
	if !ok || tok == "" {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	match := 0
	for _, t := range h.tokens {
		match |= subtle.ConstantTimeCompare(sum[:], t[:])
	}
	return match == 1
}

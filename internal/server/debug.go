package server

import (
	"errors"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/prodready/service/internal/health"
	"github.com/prodready/service/internal/problem"
)

// Routes that fail on purpose, mounted only with Options.FailRoutes
// (always in development, with debug.fail_route in staging, never in
// production: the configuration refuses it). They let a developer or a
// demonstration watch the whole failure path (the 500 problem+json with its
// request_id, the error log, the stack-trace mail) without breaking a
// dependency.
const (
	debugPanicPath = "/debug/panic"
	debugErrorPath = "/debug/error"
)

// errDeliberate is what GET /debug/error records: a returned error, mailed
// as a 5xx (without a stack, as every returned error in Go).
var errDeliberate = errors.New("debug: a deliberate failure (GET " + debugErrorPath + ")")

func addFailRoutes(e *gin.Engine, guard func(*gin.Context) (bool, int)) {
	// A panic in a handler: recovery answers 500, logs the stack and
	// reports it (a "panic" mail with the stack trace).
	panicky := func(*gin.Context) {
		panic("debug: a deliberate panic (GET " + debugPanicPath + ")")
	}
	// A handler that records an error and answers 500: a "5xx" mail. Its
	// fingerprint differs from the panic's, so the two can show that one
	// error's flood does not hide another (docs/LOGGING.md, the budget).
	failing := func(c *gin.Context) {
		_ = c.Error(errDeliberate)
		problem.Write(c, problem.Internal())
	}
	g := e.Group("")
	if guard != nil {
		g.Use(operatorsOnly(guard))
	}
	for path, h := range map[string]gin.HandlerFunc{debugPanicPath: panicky, debugErrorPath: failing} {
		g.GET(path, h)
		g.HEAD(path, h)
	}
}

// operatorsOnly lets a request reach a fail route only when guard admits it
// (a status token, outside development). A refusal is a 401 problem with the
// scheme to use, or a 429 with Retry-After once the address has sent too
// many wrong tokens; neither is reported, so a stranger's attempts cost no
// alert.
func operatorsOnly(guard func(*gin.Context) (bool, int)) gin.HandlerFunc {
	return func(c *gin.Context) {
		ok, blockedFor := guard(c)
		switch {
		case ok:
			c.Next()
		case blockedFor > 0:
			c.Header("Retry-After", strconv.Itoa(blockedFor))
			problem.Write(c, problem.TooManyRequests("too many wrong tokens from this address: retry after "+strconv.Itoa(blockedFor)+" s"))
		default:
			c.Header("WWW-Authenticate", health.Challenge)
			problem.Write(c, problem.Unauthorized("outside development, the routes that fail on purpose need a status token: send Authorization: Bearer <token> (status.tokens)"))
		}
	}
}

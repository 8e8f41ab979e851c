package server

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

const (
	livezPath  = "/livez"
	readyzPath = "/readyz"
	statusPath = "/status"
)

// addRoutes registers the routes every service has (probes and status),
// then each resource's own. Middleware is set up in New.
func addRoutes(e *gin.Engine, o Options) {
	// Every GET route answers HEAD too (RFC 9110 §9.3.2): gin does not do it
	// by itself, and probes and curl -I use it. net/http drops the body.
	e.GET(livezPath, handleLivez(o.Version))
	e.HEAD(livezPath, handleLivez(o.Version))
	if o.Health != nil {
		e.GET(readyzPath, o.Health.Readyz())
		e.HEAD(readyzPath, o.Health.Readyz())
		// The status route answers application/health+json for every method,
		// 405 included (New's NoMethod), so a monitor always gets a parsable body.
		e.GET(statusPath, o.Health.Status())
		e.HEAD(statusPath, o.Health.Status())
	}
	if o.FailRoutes {
		addFailRoutes(e, o.FailRoutesGuard)
	}
	// The resources' routes, in a group that bounds how long a handler
	// waits for a client that takes nothing (sendStall); the probes and
	// /status answer a few hundred bytes and need none.
	var r gin.IRouter = e
	if o.SendStallTimeout > 0 {
		r = e.Group("", sendStall(o.SendStallTimeout, o.WriteTimeout))
	}
	for _, register := range o.Routes {
		register(r)
	}
}

// handleLivez answers the liveness probe. It checks no dependency on
// purpose: a database outage must not make the orchestrator restart every
// instance, which would not fix the database. It reports the build's version
// so a rollout can be verified.
func handleLivez(version string) gin.HandlerFunc {
	type response struct {
		Status  string `json:"status"`
		Version string `json:"version,omitempty"`
	}
	return func(c *gin.Context) {
		c.JSON(http.StatusOK, response{Status: "ok", Version: version})
	}
}

package server

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/prodready/service/internal/notes"
)

const (
	livezPath  = "/livez"
	readyzPath = "/readyz"
	statusPath = "/status"
)

// addRoutes registers every route the service serves; this is the one place
// to read the API's surface. Middleware is set up in New.
func addRoutes(e *gin.Engine, o Options) {
	e.GET(livezPath, handleLivez(o.Version))
	if o.Health != nil {
		e.GET(readyzPath, o.Health.Readyz())
		// The status route answers application/health+json for every method,
		// 405 included, so a monitor always gets a parsable body.
		e.GET(statusPath, o.Health.Status())
		e.HEAD(statusPath, o.Health.Status())
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
			e.Handle(m, statusPath, o.Health.MethodNotAllowed())
		}
	}

	api := notes.APIOptions{
		DefaultPageSize: o.DefaultPageSize,
		MaxPageSize:     o.MaxPageSize,
		Logger:          o.Logger,
	}
	n := e.Group("/v1/notes")
	n.POST("", notes.HandleCreate(o.Notes, api))
	n.GET("", notes.HandleList(o.Notes, api))
	n.GET("/:id", notes.HandleGet(o.Notes, api))
	n.PUT("/:id", notes.HandleUpdate(o.Notes, api))
	n.DELETE("/:id", notes.HandleDelete(o.Notes, api))
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

package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/gin-gonic/gin"

	"github.com/prodready/service/internal/problem"
)

// errNotFound is what a widgets store answers for an unknown id.
var errNotFound = errors.New("widget not found")

// widgets is the tiny resource the server tests mount, as a real resource
// mounts itself through Options.Routes: enough routes to show routing, 405
// answers, body limits, handler logging and reported failures, without
// depending on any real resource.
type widgets struct {
	err    error        // what every store call fails with; nil succeeds
	calls  atomic.Int32 // store calls made
	logger *slog.Logger // set by newServer: the server's logger
}

func (w *widgets) routes(r gin.IRouter) {
	g := r.Group("/v1/widgets")
	g.POST("", w.create)
	g.GET("", w.get)
	g.GET("/:id", w.get)
	g.PUT("/:id", w.get)
	g.DELETE("/:id", w.get)
}

// store stands in for a resource's store: it counts the call and fails
// with w.err.
func (w *widgets) store(context.Context) error {
	w.calls.Add(1)
	return w.err
}

// create reads the whole body (failing with 413 past the server's limit),
// then stores it.
func (w *widgets) create(c *gin.Context) {
	if _, err := io.ReadAll(c.Request.Body); err != nil {
		if tooLarge, ok := errors.AsType[*http.MaxBytesError](err); ok {
			problem.Write(c, problem.PayloadTooLarge(tooLarge.Limit))
			return
		}
		problem.Write(c, problem.BadRequest("the body could not be read"))
		return
	}
	if err := w.store(c.Request.Context()); err != nil {
		w.failed(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"id": "w1"})
}

func (w *widgets) get(c *gin.Context) {
	if err := w.store(c.Request.Context()); err != nil {
		w.failed(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"id": c.Param("id")})
}

// failed answers a store error the way resources do: 404 for an unknown
// id; anything else is logged, recorded for the alert and answered 500.
func (w *widgets) failed(c *gin.Context, err error) {
	if errors.Is(err, errNotFound) {
		problem.Write(c, problem.NotFound("no widget with this id"))
		return
	}
	w.logger.ErrorContext(c.Request.Context(), "widget store failed", "error", err.Error())
	_ = c.Error(err)
	problem.Write(c, problem.Internal())
}

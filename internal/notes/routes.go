package notes

import "github.com/gin-gonic/gin"

// Routes returns the registration of the notes resource for
// server.Options.Routes: everything under /v1/notes, served from s.
// This is the one list of the resource's routes.
func Routes(s Store, o APIOptions) func(gin.IRouter) {
	return func(r gin.IRouter) {
		n := r.Group("/v1/notes")
		n.POST("", HandleCreate(s, o))
		n.GET("", HandleList(s, o))
		n.HEAD("", HandleList(s, o)) // every GET route answers HEAD too
		n.GET("/:id", HandleGet(s, o))
		n.HEAD("/:id", HandleGet(s, o))
		n.PUT("/:id", HandleUpdate(s, o))
		n.DELETE("/:id", HandleDelete(s, o))
	}
}

package server

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/prodready/service/internal/logging"
	"github.com/prodready/service/internal/problem"
)

// discardWriter is an http.ResponseWriter that keeps nothing but its header
// map, cleared between requests, so a benchmark measures the handler chain
// and not a recorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkLayers measures what each of the server's middleware layers adds
// to a request, in process: a cached read's handler (fixed bytes with an
// ETag, what a cache hit writes) behind no middleware, then each layer of
// New's order added in turn. docs/PERFORMANCE.md has the table.
// `go test -run '^$' -bench Layers -benchmem ./internal/server/`
func BenchmarkLayers(b *testing.B) {
	logger, _, err := logging.New(io.Discard, logging.Options{Level: "info", Format: "json"})
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"id":"019ab7c2-0000-7000-8000-000000000000","title":"note","body":"lorem ipsum lorem ipsum","version":1}`)
	handler := func(c *gin.Context) {
		c.Header("ETag", `"1"`)
		c.Data(http.StatusOK, "application/json; charset=utf-8", body)
	}
	layers := []struct {
		name string
		mw   gin.HandlerFunc
	}{
		{"requestID", requestID()},
		{"accessLog", accessLog(logger, newStatusLogGate(time.Minute))},
		{"recovery", recovery(logger, NoAlerts{})},
		{"reportErrors", reportErrors(NoAlerts{})},
		{"requestInput", requestInput(DefaultMaxBodyBytes, problem.Write)},
	}
	gin.SetMode(gin.ReleaseMode)
	for n := 0; n <= len(layers); n++ {
		name := "bare"
		if n > 0 {
			name = "+" + layers[n-1].name
		}
		b.Run(name, func(b *testing.B) {
			e := gin.New()
			_ = e.SetTrustedProxies(nil)
			e.ContextWithFallback = true
			for _, l := range layers[:n] {
				e.Use(l.mw)
			}
			e.GET("/v1/notes/:id", handler)
			req, _ := http.NewRequest(http.MethodGet, "/v1/notes/019ab7c2-0000-7000-8000-000000000000", nil)
			req.RemoteAddr = "127.0.0.1:40000"
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				e.ServeHTTP(w, req)
			}
		})
	}
}

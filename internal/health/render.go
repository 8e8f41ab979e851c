package health

import (
	"encoding/json"
	"net/http"
)

// healthJSON renders a Body with the application/health+json content type
// (gin's JSON renderer would say application/json).
type healthJSON struct{ b Body }

func (r healthJSON) Render(w http.ResponseWriter) error {
	r.WriteContentType(w)
	return json.NewEncoder(w).Encode(r.b)
}

func (r healthJSON) WriteContentType(w http.ResponseWriter) {
	w.Header().Set("Content-Type", ContentType)
}

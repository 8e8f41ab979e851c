package main

import (
	"io"
	"net/http"
	"testing"
)

// TestServe_HEADOnEveryGETRoute: every GET route of the running service
// answers HEAD with the GET's status and headers and no body (gin answers
// 405 for HEAD unless the route registers it).
func TestServe_HEADOnEveryGETRoute(t *testing.T) {
	a := startApp(t, nil)
	_, created := a.do(t, "POST", "/v1/notes", `{"title":"head"}`)
	id, _ := created["id"].(string)
	for _, path := range []string{"/livez", "/readyz", "/status", "/v1/notes", "/v1/notes/" + id, "/v1/notes/missing"} {
		t.Run(path, func(t *testing.T) {
			get := a.send(t, http.MethodGet, path)
			head := a.send(t, http.MethodHead, path)
			if head.StatusCode != get.StatusCode || head.StatusCode == http.StatusMethodNotAllowed {
				t.Errorf("HEAD %d, GET %d", head.StatusCode, get.StatusCode)
			}
			if head.Header.Get("Content-Type") != get.Header.Get("Content-Type") {
				t.Errorf("HEAD Content-Type %q, GET %q", head.Header.Get("Content-Type"), get.Header.Get("Content-Type"))
			}
			if body, _ := io.ReadAll(head.Body); len(body) != 0 {
				t.Errorf("HEAD has a body: %q", body)
			}
		})
	}
}

// send makes one request with the status token and returns the response,
// its body read into memory.
func (a *app) send(t *testing.T, method, path string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, a.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := a.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

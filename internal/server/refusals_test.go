package server_test

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prodready/service/internal/problem"
	"github.com/prodready/service/internal/server"
	"github.com/prodready/service/internal/servicetest"
)

// serveRefusals runs a real http.Server on loopback behind server.Refusals,
// with the service's header limit, and a handler that answers 200.
func serveRefusals(t *testing.T, o server.RefusalOptions) (addr string, logs *servicetest.LogBuffer) {
	t.Helper()
	logs = &servicetest.LogBuffer{}
	o.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	o.MaxHeaderBytes = 8 << 10
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"status":"ok"}`)
		}),
		ReadHeaderTimeout: 5 * time.Second,
		MaxHeaderBytes:    o.MaxHeaderBytes,
	}
	go func() { _ = srv.Serve(server.Refusals(ln, o)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), logs
}

// send writes raw bytes on a new connection and reads every response until
// the server closes it.
func send(t *testing.T, addr, raw string) []*http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	var out []*http.Response
	br := bufio.NewReader(c)
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return out
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(strings.NewReader(string(body)))
		out = append(out, resp)
	}
}

// TestRefusals_NetHTTPsOwnAnswersAreProblems: what net/http answers on its
// own, before any handler, reaches the client as the service's problem
// shape, with a request ID that is in the log too, and never as a 5xx.
func TestRefusals_NetHTTPsOwnAnswersAreProblems(t *testing.T) {
	addr, logs := serveRefusals(t, server.RefusalOptions{LogPerSecond: 1000})
	cases := []struct {
		name, raw  string
		status     int
		typ        string
		detail     string // part of the detail
		netHTTPWas int    // the status net/http wrote, when it is not the one sent
	}{
		{"no Host", "GET / HTTP/1.1\r\n\r\n", 400, problem.TypeBadRequest, "missing required Host header", 0},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, problem.TypeBadRequest, "could not be read", 0},
		{"a header name with a space", "GET / HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n", 400, problem.TypeBadRequest, "invalid header name", 0},
		{"a header value with a control character", "GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n", 400, problem.TypeBadRequest, "could not be read", 0},
		{"garbage for a request line", "GARBAGE\r\n\r\n", 400, problem.TypeBadRequest, "malformed request line", 0},
		{"a negative Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, problem.TypeBadRequest, "could not be read", 0},
		{"two different Content-Lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400, problem.TypeBadRequest, "could not be read", 0},
		{"HTTP/9.9", "GET / HTTP/9.9\r\nHost: x\r\n\r\n", 400, problem.TypeBadRequest, "HTTP version", 505},
		{"HTTP/2.0 without the preface", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 400, problem.TypeBadRequest, "HTTP version", 505},
		{"Transfer-Encoding: gzip", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400, problem.TypeBadRequest, "Transfer-Encoding", 501},
		{"headers over the limit", "GET / HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", 20<<10) + "\r\n\r\n", 431, problem.TypeHeadersTooLarge, "8192 bytes", 0},
		{"an Expect other than 100-continue", "GET / HTTP/1.1\r\nHost: x\r\nExpect: fancy\r\n\r\n", 417, problem.TypeExpectationFailed, "100-continue", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resps := send(t, addr, tc.raw)
			if len(resps) != 1 {
				t.Fatalf("%d responses, want 1", len(resps))
			}
			resp := resps[0]
			var p problem.Problem
			body, _ := io.ReadAll(resp.Body)
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatalf("body is not JSON: %v: %s", err, body)
			}
			id := resp.Header.Get(server.RequestIDHeader)
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != problem.ContentType ||
				p.Type != tc.typ || p.Status != tc.status || !strings.Contains(p.Detail, tc.detail) || p.Title == "" {
				t.Errorf("got %d %s %+v, want %d %s with %q in the detail", resp.StatusCode, resp.Header.Get("Content-Type"), p, tc.status, tc.typ, tc.detail)
			}
			if id == "" || p.RequestID != id || p.Instance != "urn:uuid:"+id || !resp.Close {
				t.Errorf("request ID %q, body %q, instance %q, close %v: want one ID in both, and Connection: close", id, p.RequestID, p.Instance, resp.Close)
			}
			var logged map[string]any
			for _, r := range logs.Records(t, "request refused before routing") {
				if r["request_id"] == id {
					logged = r
				}
			}
			if logged == nil {
				t.Fatalf("no log line with request_id %s:\n%s", id, logs)
			}
			if logged["level"] != "INFO" || logged["status"] != float64(tc.status) || logged["client_ip"] != "127.0.0.1" {
				t.Errorf("log line %v: want info, status %d, client_ip 127.0.0.1", logged, tc.status)
			}
			if was, _ := logged["net_http_status"].(float64); int(was) != tc.netHTTPWas {
				t.Errorf("net_http_status %v in the log, want %d", logged["net_http_status"], tc.netHTTPWas)
			}
		})
	}

	t.Run("a good request and then a bad one on one connection", func(t *testing.T) {
		resps := send(t, addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/9.9\r\nHost: x\r\n\r\n")
		if len(resps) != 2 {
			t.Fatalf("%d responses, want 2", len(resps))
		}
		body, _ := io.ReadAll(resps[0].Body)
		if resps[0].StatusCode != 200 || string(body) != `{"status":"ok"}` || resps[0].Header.Get("Content-Type") != "application/json" {
			t.Errorf("the good request: %d %s %q, want the handler's answer untouched", resps[0].StatusCode, resps[0].Header, body)
		}
		if resps[1].StatusCode != 400 || resps[1].Header.Get("Content-Type") != problem.ContentType {
			t.Errorf("the bad one: %d %s, want a 400 problem", resps[1].StatusCode, resps[1].Header.Get("Content-Type"))
		}
	})
}

// TestRefusals_AFloodIsLoggedAtAFewLines: a client sending garbage in a
// loop is answered every time, and logged at most LogPerSecond lines a
// second; the next line logged says how many were left out.
func TestRefusals_AFloodIsLoggedAtAFewLines(t *testing.T) {
	addr, logs := serveRefusals(t, server.RefusalOptions{LogPerSecond: 2})
	start := time.Now()
	const n = 20
	for range n {
		if resps := send(t, addr, "GARBAGE\r\n\r\n"); len(resps) != 1 || resps[0].StatusCode != 400 {
			t.Fatalf("a refusal was not answered 400: %v", resps)
		}
	}
	seconds := int(time.Since(start)/time.Second) + 2 // the seconds the loop touched
	lines := logs.Records(t, "request refused before routing")
	if len(lines) > 2*seconds || len(lines) == 0 {
		t.Fatalf("%d lines for %d refusals in at most %d seconds, want 1 to %d", len(lines), n, seconds, 2*seconds)
	}
	// A second later, the next refusal's line carries the count left out.
	time.Sleep(time.Until(start.Truncate(time.Second).Add(time.Duration(seconds) * time.Second)))
	send(t, addr, "GARBAGE\r\n\r\n")
	lines = logs.Records(t, "request refused before routing")
	var suppressed float64
	for _, l := range lines {
		s, _ := l["suppressed"].(float64)
		suppressed += s
	}
	if int(suppressed)+len(lines) != n+1 {
		t.Errorf("%d lines and %v suppressed, want them to add up to the %d refusals", len(lines), suppressed, n+1)
	}
}

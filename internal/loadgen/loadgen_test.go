package loadgen_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prodready/service/internal/loadgen"
)

// What make bench and the restart tests read off a run: answers by status,
// requests cut by the server, the pace of an open loop, and percentiles.
func TestRun(t *testing.T) {
	t.Parallel()
	get := func(int, int) *http.Request { r, _ := http.NewRequest("GET", "/x", nil); return r }
	tests := []struct {
		name    string
		handler http.HandlerFunc
		opts    loadgen.Options
		check   func(t *testing.T, r loadgen.Result)
	}{
		{
			name:    "every answer is counted by status, latencies sorted",
			handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) },
			opts:    loadgen.Options{Clients: 3, Request: get},
			check: func(t *testing.T, r loadgen.Result) {
				if r.Answered == 0 || r.Status[204] != r.Answered || r.OK() != r.Answered || r.Failed() != 0 {
					t.Errorf("answered %d, by status %v, ok %d, failed %d; want every request a 204", r.Answered, r.Status, r.OK(), r.Failed())
				}
				if len(r.Latencies) != r.Answered || r.Percentile(50) > r.Percentile(99) || r.Percentile(99) <= 0 || r.PerSecond() <= 0 {
					t.Errorf("%d latencies for %d answers, p50 %s p99 %s, %.0f req/s", len(r.Latencies), r.Answered, r.Percentile(50), r.Percentile(99), r.PerSecond())
				}
			},
		},
		{
			name: "a refused request is an answer but not OK",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Connection", "close")
				w.WriteHeader(http.StatusServiceUnavailable)
			},
			opts: loadgen.Options{Clients: 2, Request: get},
			check: func(t *testing.T, r loadgen.Result) {
				if r.Answered == 0 || r.OK() != 0 || r.Failed() < r.Answered || r.Closed != r.Answered || r.OKPercentile(99) != 0 {
					t.Errorf("answered %d, ok %d, failed %d, closed %d, ok p99 %s; want every answer a 503 saying close", r.Answered, r.OK(), r.Failed(), r.Closed, r.OKPercentile(99))
				}
			},
		},
		{
			name: "a connection closed under a request is counted as cut",
			handler: func(w http.ResponseWriter, r *http.Request) {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					_ = conn.Close()
				}
			},
			opts: loadgen.Options{Clients: 1, Request: get, Timeout: time.Second},
			check: func(t *testing.T, r loadgen.Result) {
				if r.Cut == 0 || r.Answered != 0 || r.Failed() < r.Cut || len(r.Errors) == 0 {
					t.Errorf("cut %d, answered %d, failed %d, errors %v; want cut requests, none answered", r.Cut, r.Answered, r.Failed(), r.Errors)
				}
			},
		},
		{
			name:    "an open loop sends at the rate asked, not as fast as it can",
			handler: func(w http.ResponseWriter, r *http.Request) {},
			opts:    loadgen.Options{Clients: 4, Request: get, Rate: 100},
			check: func(t *testing.T, r loadgen.Result) {
				// 100 a second for the run's 300 ms: about 30, never thousands.
				if r.Sent == 0 || r.Sent > 60 || len(r.Late) != r.Sent || r.LatePercentile(50) < 0 || len(r.OKWire) != r.OK() || r.OKWirePercentile(99) > r.OKPercentile(99) {
					t.Errorf("sent %d (late %d, ok wire %d of %d ok), p99 wire %s vs due %s; want about 30 paced requests",
						r.Sent, len(r.Late), len(r.OKWire), r.OK(), r.OKWirePercentile(99), r.OKPercentile(99))
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			tt.opts.Addr = strings.TrimPrefix(srv.URL, "http://")
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			tt.check(t, loadgen.Run(ctx, tt.opts))
		})
	}
}

// Nothing listening: every connection attempt is a dial failure, nothing is sent.
func TestRun_NothingListening(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	r := loadgen.Run(ctx, loadgen.Options{Addr: addr, Clients: 2, Request: func(int, int) *http.Request {
		req, _ := http.NewRequest("GET", "/", nil)
		return req
	}})
	if r.DialFails == 0 || r.Sent != 0 || r.Failed() != r.DialFails {
		t.Errorf("dial fails %d, sent %d, failed %d; want only dial failures", r.DialFails, r.Sent, r.Failed())
	}
}

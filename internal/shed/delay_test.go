package shed_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prodready/service/internal/health"
	"github.com/prodready/service/internal/problem"
	"github.com/prodready/service/internal/shed"
)

// saturate keeps one CPU busy the way handlers that never wait do: many
// goroutines, each computing a little and then yielding, so the run queue
// stays long and every goroutine waits its turn. It returns a stop function.
func saturate(n int) (stop func()) {
	var done atomic.Bool
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for !done.Load() {
				for start := time.Now(); time.Since(start) < time.Millisecond; {
				}
				runtime.Gosched()
			}
		})
	}
	return func() { done.Store(true); wg.Wait() }
}

// On one CPU that the run queue keeps busy, requests never pile up in
// flight (each one holds its slot only while it runs), so only how long
// they waited unread says the service is past capacity: a share of requests
// is refused at once with 503 and Retry-After, the probes still answer,
// /status warns why, and admission comes back when the CPU is free again.
func TestOverload_RequestsWaitingUnreadAreShedUntilTheyDoNot(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	srv, s, release, logs := slowServer(t, shed.Options{MaxInFlight: 64, QueueSize: 64, QueueTimeout: time.Second,
		MaxReadDelay: 10 * time.Millisecond, SampleEvery: 1})
	close(release) // /work answers at once: the CPU is the only bottleneck
	check := s.Check()

	if a := get(srv.URL + "/work"); a.status != http.StatusOK {
		t.Fatalf("before saturation: %d %v, want 200", a.status, a.err)
	}
	stop, saturated := saturate(100), time.Now()
	refused, _ := hammer(srv.URL+"/work", 10*time.Second, true)
	st := s.Stats()
	t.Logf("first refusal after %s", time.Since(saturated).Round(time.Millisecond))
	if refused.status == 0 {
		stop()
		t.Fatalf("no request refused in 10 s of a saturated CPU; stats %+v", st)
	}
	if refused.retryAfter != "1" || refused.problem.Type != problem.TypeOverloaded ||
		!strings.Contains(refused.problem.Detail, "unread") { // "requests wait ... unread", or "recovering from a backlog of unread requests"
		t.Errorf("refusal: Retry-After %q, problem %+v; want 1 and an overloaded problem saying requests wait unread", refused.retryAfter, refused.problem)
	}
	if st.Backlogged == 0 || st.Shed != st.Backlogged || st.AdmitPercent >= 100 {
		t.Errorf("stats %+v: want refusals for the backlog only, admission below 100%%", st)
	}
	if a := get(srv.URL + "/livez"); a.status != http.StatusOK {
		t.Errorf("/livez on a saturated CPU: %d %v, want 200 (probes are exempt)", a.status, a.err)
	}
	if r := check.Run(context.Background()); r.Status != health.Warn || !strings.Contains(r.Output, "to drain requests waiting unread") {
		t.Errorf("status check while shedding: %+v, want warn naming the backlog", r)
	}
	stop()

	// Once the CPU is free, the requests that follow raise admission back
	// to all of them.
	// Ten seconds: recovery takes several windows, longer on a loaded machine.
	waitWithin(t, 10*time.Second, "admission back to 100%", func() bool {
		get(srv.URL + "/work")
		return s.Stats().AdmitPercent == 100
	})
	check.Run(context.Background()) // it may count refusals made while admission rose
	for range 20 {
		if a := get(srv.URL + "/work"); a.status != http.StatusOK {
			t.Fatalf("after the CPU calmed down: %d %v, want 200", a.status, a.err)
		}
	}
	if r := check.Run(context.Background()); r.Status != health.Pass || !strings.Contains(r.Output, "admitting 100%") {
		t.Errorf("status check after recovery: %+v, want pass, admitting 100%%", r)
	}
	var warned bool
	for _, r := range logs.Take(t) {
		if r["msg"] == "shedding load: requests refused with 503" && r["backlogged_total"].(float64) > 0 {
			warned = true
		}
	}
	if !warned {
		t.Error("no shedding warning counted the refusals for the backlog")
	}
}

// With max_read_delay 0 nothing is measured or refused for waiting unread.
func TestOverload_ReadDelaySheddingOff(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	srv, s, release, _ := slowServer(t, shed.Options{MaxInFlight: 64, QueueSize: 64, QueueTimeout: time.Second, SampleEvery: 1})
	close(release)
	stop := saturate(100)
	if _, statuses := hammer(srv.URL+"/work", 2*time.Second, false); len(statuses) != 1 || statuses[http.StatusOK] == 0 {
		t.Errorf("with max_read_delay 0 on a saturated CPU: statuses %v, want only 200", statuses)
	}
	stop()
	if st := s.Stats(); st.ReadDelay != 0 || st.AdmitPercent != 100 {
		t.Errorf("stats %+v, want nothing measured and everything admitted", st)
	}
	if r := s.Check().Run(context.Background()); !strings.Contains(r.Output, "read-delay shedding off (http.max_read_delay is 0)") {
		t.Errorf("check %+v, want it to say read-delay shedding is off", r)
	}
}

// hammer sends requests to url from 16 clients for d, or until the first
// 503 when untilRefused; it returns that 503 (status 0 if none) and how
// many answers of each status arrived.
func hammer(url string, d time.Duration, untilRefused bool) (answer, map[int]int) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	var refused answer
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for ctx.Err() == nil {
				a := get(url)
				mu.Lock()
				statuses[a.status]++
				if a.status == http.StatusServiceUnavailable && refused.status == 0 {
					refused = a
					if untilRefused {
						cancel()
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return refused, statuses
}

// However fast requests come, at most 128 a window are measured, each a
// system call: under load, one in SampleEvery would be thousands a second
// where a window's quantile needs a hundred or so.
func TestOverload_SamplesAtMost128AWindow(t *testing.T) {
	const window = 5 * time.Second // one sample per 39 ms at most
	srv, s, release, _ := slowServer(t, shed.Options{MaxInFlight: 64, QueueSize: 64, QueueTimeout: time.Second,
		MaxReadDelay: time.Second, DelayWindow: window, SampleEvery: 1})
	close(release)
	start := time.Now()
	_, statuses := hammer(srv.URL+"/work", time.Second, false)
	elapsed := time.Since(start)
	served, sampled := statuses[http.StatusOK], s.Stats().Sampled
	// One sample per window/128 of the time the requests took, and the first.
	most := uint64(elapsed/(window/128)) + 1
	t.Logf("%d requests in %s, %d sampled (at most %d)", served, elapsed.Round(time.Millisecond), sampled, most)
	if sampled == 0 || sampled > most {
		t.Errorf("%d of %d requests sampled in %s; want 1 to %d", sampled, served, elapsed, most)
	}
	if served <= int(most) {
		t.Errorf("only %d requests in %s: the cap of %d was not reached, so nothing shows it", served, elapsed, most)
	}
}

// A client that pipelines a burst (thousands of cheap requests in one
// write) makes its own requests wait behind each other in its connection,
// which net/http serves one at a time: they are not a backlog of the
// service, so nothing is refused for them, and a request of another client
// after the burst is served.
func TestOverload_PipelinedBurstIsNotABacklog(t *testing.T) {
	srv, s, release, _ := slowServer(t, shed.Options{MaxInFlight: 64, QueueSize: 64, QueueTimeout: time.Second,
		MaxReadDelay: 10 * time.Millisecond, SampleEvery: 1})
	close(release)
	const conns, each = 2, 20000
	var wg sync.WaitGroup
	statuses := make([]map[int]int, conns)
	for i := range conns {
		statuses[i] = map[int]int{}
		wg.Go(func() {
			c, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			go func() { _, _ = c.Write(bytes.Repeat([]byte("GET /work HTTP/1.1\r\nHost: x\r\n\r\n"), each)) }()
			r := bufio.NewReader(c)
			for range each {
				resp, err := http.ReadResponse(r, nil)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				statuses[i][resp.StatusCode]++
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	t.Logf("statuses %v; stats %+v", statuses, st)
	for i, m := range statuses {
		if m[http.StatusOK] != each {
			t.Errorf("connection %d: %v, want %d answers 200", i, m, each)
		}
	}
	if st.Backlogged != 0 || st.AdmitPercent != 100 || st.Pipelined == 0 {
		t.Errorf("stats %+v: want the pipelined requests left out of the measure (Pipelined > 0), none refused, admitting 100%%", st)
	}
	if a := get(srv.URL + "/work"); a.status != http.StatusOK {
		t.Errorf("another client after the burst: %d %v, want 200", a.status, a.err)
	}
}

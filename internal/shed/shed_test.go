package shed_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/prodready/service/internal/health"
	"github.com/prodready/service/internal/logging"
	"github.com/prodready/service/internal/problem"
	"github.com/prodready/service/internal/servicetest"
	"github.com/prodready/service/internal/shed"
)

// slowServer serves /work, which blocks until release is closed, and
// /livez, which is exempt, behind the shedder.
// finalStatuses records the status each request ended with, as the access
// log (outside shedding) sees it.
type finalStatuses struct {
	mu  sync.Mutex
	all []int
}

func (f *finalStatuses) record(c *gin.Context) {
	c.Next()
	f.mu.Lock()
	f.all = append(f.all, c.Writer.Status())
	f.mu.Unlock()
}

// last is the status of the request that ended last, waiting up to 2 s for
// one to end (a handler ends just after its client sees the end).
func (f *finalStatuses) last() int {
	for range 200 {
		f.mu.Lock()
		n := len(f.all)
		f.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.all) == 0 {
		return 0
	}
	return f.all[len(f.all)-1]
}

func slowServer(t *testing.T, o shed.Options, outer ...gin.HandlerFunc) (*httptest.Server, *shed.Shedder, chan struct{}, *servicetest.LogBuffer) {
	t.Helper()
	logs := &servicetest.LogBuffer{}
	logger, _, err := logging.New(logs, logging.Options{Level: "info", Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	o.Logger = logger
	o.Exempt = []string{"/livez"}
	s := shed.New(o)
	release := make(chan struct{})
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.Use(outer...)
	e.Use(s.Middleware())
	e.GET("/work", func(c *gin.Context) {
		select {
		case <-release:
		case <-c.Request.Context().Done():
		}
		c.String(http.StatusOK, "done")
	})
	e.GET("/livez", func(c *gin.Context) { c.String(http.StatusOK, "alive") })
	// Another method on an exempt path has no route template: gin answers
	// it through NoMethod, as the service does for /status.
	e.HandleMethodNotAllowed = true
	e.NoMethod(func(c *gin.Context) { c.String(http.StatusMethodNotAllowed, "use GET") })
	srv := httptest.NewUnstartedServer(e)
	srv.Config.ConnContext = s.ConnContext
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	return srv, s, release, logs
}

type answer struct {
	status     int
	retryAfter string
	problem    problem.Problem
	took       time.Duration
	err        error
}

func get(url string) answer {
	start := time.Now()
	resp, err := http.Get(url)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), took: time.Since(start)}
	if resp.Header.Get("Content-Type") == problem.ContentType {
		_ = json.NewDecoder(resp.Body).Decode(&a.problem)
	}
	return a
}

// waitFor polls cond until it holds, for at most two seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitWithin(t, 2*time.Second, what, cond)
}

// waitWithin polls cond until it holds, for at most d.
func waitWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestOverload_QueuedAreServedExcessRefusedAtOnce(t *testing.T) {
	const queueTimeout = 10 * time.Second // far longer than the test: refusals must not wait for it
	srv, s, release, logs := slowServer(t, shed.Options{MaxInFlight: 2, QueueSize: 2, QueueTimeout: queueTimeout})

	// Two requests take the slots, two more wait in the queue.
	var wg sync.WaitGroup
	served := make(chan answer, 4)
	for range 4 {
		wg.Go(func() { served <- get(srv.URL + "/work") })
	}
	waitFor(t, "2 in flight and 2 queued", func() bool { st := s.Stats(); return st.InFlight == 2 && st.Queued == 2 })

	// The next ones find the queue full: 503 at once, with Retry-After.
	for range 3 {
		a := get(srv.URL + "/work")
		if a.err != nil || a.status != http.StatusServiceUnavailable {
			t.Fatalf("excess request: status %d, error %v; want 503", a.status, a.err)
		}
		if a.retryAfter != "10" || a.problem.Type != problem.TypeOverloaded || a.problem.Status != 503 || a.problem.Instance != "/work" {
			t.Errorf("refusal: Retry-After %q, problem %+v; want Retry-After 10 and an overloaded problem", a.retryAfter, a.problem)
		}
		if a.took > queueTimeout/2 {
			t.Errorf("refusal took %s, want it well before the queue timeout %s", a.took, queueTimeout)
		}
	}
	// Exempt routes still answer while the instance is full, whatever the
	// method; an unknown path is shed like any other request.
	if a := get(srv.URL + "/livez"); a.status != http.StatusOK {
		t.Errorf("/livez during overload: %d %v, want 200", a.status, a.err)
	}
	if resp, err := http.Post(srv.URL+"/livez", "text/plain", nil); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /livez during overload: %v %v, want its 405, not shed", resp, err)
	} else {
		_ = resp.Body.Close()
	}
	if a := get(srv.URL + "/nowhere"); a.status != http.StatusServiceUnavailable {
		t.Errorf("an unknown path during overload: %d %v, want 503", a.status, a.err)
	}

	close(release)
	wg.Wait()
	close(served)
	for a := range served {
		if a.err != nil || a.status != http.StatusOK {
			t.Errorf("admitted or queued request: status %d, error %v; want 200", a.status, a.err)
		}
	}
	st := s.Stats()
	want := shed.Stats{MaxInFlight: 2, QueueSize: 2, Admitted: 4, WaitedTotal: 2, Shed: 4, QueueFull: 4, AdmitPercent: 100}
	if st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}

	// One warning for the burst, not one per refusal.
	var warns []map[string]any
	for _, r := range logs.Take(t) {
		if r["msg"] == "shedding load: requests refused with 503" {
			warns = append(warns, r)
		}
	}
	if len(warns) != 1 || warns[0]["level"] != "WARN" || warns[0]["refused"] != float64(1) {
		t.Errorf("warnings %v; want exactly one, at warn, counting the first refusal", warns)
	}
}

// A burst refused within one warning interval is logged in full: the first
// refusal at once, the rest summed in one warning when the interval ends.
func TestOverload_EveryRefusalOfABurstReachesTheLog(t *testing.T) {
	srv, s, release, logs := slowServer(t, shed.Options{MaxInFlight: 1, QueueSize: 0, QueueTimeout: time.Second, WarnEvery: 100 * time.Millisecond})
	go func() { _ = get(srv.URL + "/work") }()
	waitFor(t, "the one slot taken", func() bool { return s.Stats().InFlight == 1 })
	for range 5 {
		if a := get(srv.URL + "/work"); a.status != http.StatusServiceUnavailable {
			t.Fatalf("request beyond the one slot: %d %v; want 503", a.status, a.err)
		}
	}
	close(release)
	var warns []map[string]any
	logged := 0.0
	waitFor(t, "warnings counting all 5 refusals", func() bool {
		for _, r := range logs.Take(t) {
			if r["msg"] == "shedding load: requests refused with 503" {
				warns = append(warns, r)
				logged += r["refused"].(float64)
			}
		}
		return logged >= 5
	})
	if logged != 5 || len(warns) > 2 || warns[len(warns)-1]["refused_total"] != float64(5) {
		t.Errorf("warnings %v; want the 5 refusals in at most two (the first at once, the rest at the interval's end)", warns)
	}
}

func TestOverload_QueuedRequestRefusedAfterQueueTimeout(t *testing.T) {
	srv, s, _, _ := slowServer(t, shed.Options{MaxInFlight: 1, QueueSize: 5, QueueTimeout: 50 * time.Millisecond})
	go get(srv.URL + "/work") // holds the only slot until cleanup
	waitFor(t, "the slot taken", func() bool { return s.Stats().InFlight == 1 })

	a := get(srv.URL + "/work")
	if a.status != http.StatusServiceUnavailable || a.retryAfter != "1" || a.problem.Type != problem.TypeOverloaded {
		t.Fatalf("queued past the timeout: %d, Retry-After %q, %+v; want 503, 1, overloaded", a.status, a.retryAfter, a.problem)
	}
	if a.took < 50*time.Millisecond {
		t.Errorf("refused after %s, before the queue timeout", a.took)
	}
	if st := s.Stats(); st.TimedOut != 1 || st.Shed != 1 || st.Queued != 0 {
		t.Errorf("stats %+v, want one timed out, nothing queued", st)
	}
}

func TestOverload_ClientGivingUpLeavesTheQueue(t *testing.T) {
	statuses := &finalStatuses{}
	srv, s, _, _ := slowServer(t, shed.Options{MaxInFlight: 1, QueueSize: 5, QueueTimeout: 10 * time.Second}, statuses.record)
	go get(srv.URL + "/work")
	waitFor(t, "the slot taken", func() bool { return s.Stats().InFlight == 1 })

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/work", nil)
	done := make(chan struct{})
	go func() {
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
		close(done)
	}()
	waitFor(t, "one queued", func() bool { return s.Stats().Queued == 1 })
	cancel()
	<-done
	waitFor(t, "the queue empty", func() bool { return s.Stats().Queued == 0 })
	if st := s.Stats(); st.Shed != 0 || st.Admitted != 1 {
		t.Errorf("stats %+v: a client that left is neither shed nor admitted", st)
	}
	if got := statuses.last(); got != problem.StatusClientClosedRequest {
		t.Errorf("the request that gave up ended with status %d, want %d (the access log's client closed request)", got, problem.StatusClientClosedRequest)
	}
}

func TestOff_PassesEverything(t *testing.T) {
	srv, s, release, _ := slowServer(t, shed.Options{})
	close(release)
	for range 5 {
		if a := get(srv.URL + "/work"); a.status != http.StatusOK {
			t.Fatalf("shedding off: status %d %v", a.status, a.err)
		}
	}
	if st := s.Stats(); st != (shed.Stats{}) {
		t.Errorf("stats %+v, want zero with shedding off", st)
	}
	if r := s.Check().Run(context.Background()); r.Status != health.Pass {
		t.Errorf("check %+v, want pass", r)
	}
}

func TestCheck_WarnsOncePerBurst(t *testing.T) {
	srv, s, _, _ := slowServer(t, shed.Options{MaxInFlight: 1, QueueSize: 0, QueueTimeout: time.Second})
	check := s.Check()
	if r := check.Run(context.Background()); r.Status != health.Pass {
		t.Fatalf("before any overload: %+v, want pass", r)
	}
	go get(srv.URL + "/work")
	waitFor(t, "the slot taken", func() bool { return s.Stats().InFlight == 1 })
	for range 2 {
		if a := get(srv.URL + "/work"); a.status != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 503", a.status)
		}
	}
	r := check.Run(context.Background())
	if r.Status != health.Warn || r.ObservedValue != uint64(2) {
		t.Errorf("after 2 refusals: %+v, want warn with 2", r)
	}
	if r := check.Run(context.Background()); r.Status != health.Pass {
		t.Errorf("no refusal since the last check: %+v, want pass", r)
	}
}

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prodready/service/internal/servicetest"
)

// The benchmarks here run the whole service in-process (run(), real HTTP on
// loopback) with a dependency broken for real, and report what a client
// sees. Figures and the machine they came from are in docs/PERFORMANCE.md.

// benchClient is shared, so connections are reused as a real client would.
var benchClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// fire sends one request and returns its status.
func fire(ctx context.Context, method, u, body string) (int, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return 0, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := benchClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// load sends n requests from workers goroutines, calling next(i) for the
// i-th request's method, URL and body, and returns every latency and how
// many answers were not want.
func load(b *testing.B, n, workers int, want int, next func(i int) (string, string, string)) (lat []time.Duration, wrong int) {
	b.Helper()
	var mu sync.Mutex
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				m, u, body := next(i)
				start := time.Now()
				status, err := fire(b.Context(), m, u, body)
				d := time.Since(start)
				mu.Lock()
				lat = append(lat, d)
				if err != nil || status != want {
					wrong++
				}
				mu.Unlock()
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return lat, wrong
}

func percentile(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// seed creates n notes and returns their URLs.
func seed(b *testing.B, a *app, n int) []string {
	b.Helper()
	urls := make([]string, n)
	for i := range urls {
		req, _ := http.NewRequestWithContext(b.Context(), "POST", a.url+"/v1/notes", strings.NewReader(fmt.Sprintf(`{"title":"note %d"}`, i)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := benchClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusCreated {
			b.Fatalf("seed: %v %v", resp, err)
		}
		urls[i] = a.url + resp.Header.Get("Location")
		_ = resp.Body.Close()
	}
	return urls
}

// BenchmarkDeadRedisVersusNoRedis compares two instances of the service in
// one run, A and B alternating: one with no Redis configured (the in-memory
// cache) and one whose Redis was killed (the breaker skips it). The workload
// is reads of 200 notes by id, 16 clients at once. It reports each side's
// requests per second and dead/none, the ratio the issue asks to keep
// above 0.8.
func BenchmarkDeadRedisVersusNoRedis(b *testing.B) {
	srv := servicetest.StartRedis(b)
	quiet := map[string]string{"APP_LOG_LEVEL": "info"}
	none := startApp(b, quiet)
	dead := startApp(b, map[string]string{"APP_LOG_LEVEL": "info", "REDIS_URL": srv.URL()})
	srv.Kill()
	apps := []*app{none, dead}
	urls := [][]string{seed(b, none, 200), seed(b, dead, 200)}
	const perRound, workers = 2000, 16
	var spent [2]time.Duration
	var served [2]int
	round := 0
	for b.Loop() {
		for k := range 2 {
			side := (k + round) % 2 // alternate which side goes first
			start := time.Now()
			lat, wrong := load(b, perRound, workers, http.StatusOK, func(i int) (string, string, string) {
				return "GET", urls[side][i%len(urls[side])], ""
			})
			spent[side] += time.Since(start)
			served[side] += len(lat)
			if wrong > 0 {
				b.Fatalf("%d of %d reads on %s failed", wrong, len(lat), apps[side].url)
			}
		}
		round++
	}
	noneRate := float64(served[0]) / spent[0].Seconds()
	deadRate := float64(served[1]) / spent[1].Seconds()
	b.ReportMetric(noneRate, "noredis-req/s")
	b.ReportMetric(deadRate, "deadredis-req/s")
	b.ReportMetric(deadRate/noneRate, "dead/none")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkFrozenRedisLatency reads notes through a service whose Redis is
// frozen (SIGSTOP), 16 clients at once, and reports p99 and the slowest read
// against cache.timeout: no read may cost more than that bound plus the
// database read, and once the breaker opens most cost nothing extra.
func BenchmarkFrozenRedisLatency(b *testing.B) {
	srv := servicetest.StartRedis(b)
	const timeout = 500 * time.Millisecond // the default cache.timeout
	a := startApp(b, map[string]string{"APP_LOG_LEVEL": "info", "REDIS_URL": srv.URL(), "APP_CACHE_TIMEOUT": timeout.String()})
	urls := seed(b, a, 200)
	srv.Freeze()
	b.Cleanup(srv.Thaw)
	var all []time.Duration
	for b.Loop() {
		lat, wrong := load(b, 2000, 16, http.StatusOK, func(i int) (string, string, string) { return "GET", urls[i%len(urls)], "" })
		if wrong > 0 {
			b.Fatalf("%d reads failed with Redis frozen", wrong)
		}
		all = append(all, lat...)
	}
	b.ReportMetric(float64(percentile(all, 0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(percentile(all, 1).Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(timeout.Milliseconds()), "cache.timeout-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkPartitionLatency writes through a service whose PostgreSQL is
// behind a partitioned proxy (every byte dropped), 10 clients at once on a
// pool of 10, and reports p99 and the slowest 503 against
// database.request_timeout.
func BenchmarkPartitionLatency(b *testing.B) {
	u, err := url.Parse(servicetest.PostgresURL(b))
	if err != nil {
		b.Fatal(err)
	}
	proxy := servicetest.NewProxy(b, u.Host)
	u.Host = proxy.Addr()
	const requestTimeout = time.Second
	a := startApp(b, map[string]string{"APP_LOG_LEVEL": "info", "DATABASE_URL": u.String(),
		"APP_DATABASE_REQUEST_TIMEOUT": requestTimeout.String()})
	proxy.Partition()
	var all []time.Duration
	for b.Loop() {
		lat, wrong := load(b, 30, 10, http.StatusServiceUnavailable, func(int) (string, string, string) {
			return "POST", a.url + "/v1/notes", `{"title":"during a partition"}`
		})
		if wrong > 0 {
			b.Fatalf("%d writes during the partition were not 503", wrong)
		}
		all = append(all, lat...)
	}
	b.ReportMetric(float64(percentile(all, 0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(percentile(all, 1).Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(requestTimeout.Milliseconds()), "request_timeout-ms")
	b.ReportMetric(0, "ns/op")
}

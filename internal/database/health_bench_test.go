package database

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"

	"github.com/prodready/service/internal/health"
)

// queryCounter counts the database check's round trips as the database sees them.
type queryCounter struct{ n atomic.Int64 }

func (q *queryCounter) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return ctx
}
func (q *queryCounter) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	if strings.HasPrefix(e.Query, "SELECT 1") {
		q.n.Add(1)
	}
}

const benchToken = "0123456789abcdef-status"

// BenchmarkStatus_50Pollers has 50 monitors poll GET /status at once against
// a real SQLite database and reports the latency percentiles and how many
// database checks ran per cache TTL (the goal: at most one).
func BenchmarkStatus_50Pollers(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, Options{SQLitePath: filepath.Join(b.TempDir(), "bench.db"), BusyTimeout: 5 * time.Second, MaxOpenConns: 4})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := Migrate(ctx, db, nil, resourceSet); err != nil {
		b.Fatal(err)
	}
	qc := &queryCounter{}
	db = db.WithQueryHook(qc)
	const ttl = 100 * time.Millisecond
	runner := health.NewRunner(nil, ttl, time.Second,
		Check(db, time.Second, discard()), MigrationsCheck(db, time.Second, discard(), resourceSet))
	h := health.NewHandler(runner, health.HandlerOptions{Tokens: []string{benchToken}, CacheTTL: ttl})
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.GET("/status", h.Status())

	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	b.SetParallelism(max(1, 50/max(1, runtimeProcs())))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			req := httptest.NewRequest("GET", "/status", nil)
			req.Header.Set("Authorization", "Bearer "+benchToken)
			w := httptest.NewRecorder()
			t0 := time.Now()
			e.ServeHTTP(w, req)
			local = append(local, time.Since(t0))
			if w.Code != 200 {
				b.Errorf("status %d", w.Code)
			}
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
	ttls := float64(elapsed)/float64(ttl) + 1 // a partial window still allows a run
	b.ReportMetric(float64(qc.n.Load())/ttls, "db-checks/ttl")
	if per := float64(qc.n.Load()) / ttls; per > 1.0001 {
		b.Errorf("the database saw %.2f checks per TTL, want at most 1", per)
	}
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

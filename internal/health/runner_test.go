package health_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prodready/service/internal/health"
)

// counted returns a check that records how often it ran.
func counted(name string, n *atomic.Int64, st health.Status) health.Check {
	return health.Check{Name: name, Timeout: time.Second, Run: func(context.Context) health.Result {
		n.Add(1)
		time.Sleep(20 * time.Millisecond) // long enough for callers to pile up
		return health.Result{Status: st}
	}}
}

func TestRunner_CoalescesConcurrentCallersAndCachesForTTL(t *testing.T) {
	var runs atomic.Int64
	r := health.NewRunner(nil, time.Hour, time.Second, counted("db:responseTime", &runs, health.Pass))
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if rep := r.Run(context.Background()); rep.Status != health.Pass {
				t.Errorf("status %s", rep.Status)
			}
		}()
	}
	wg.Wait()
	r.Run(context.Background())
	if got := runs.Load(); got != 1 {
		t.Fatalf("50 concurrent callers and one more within the TTL ran the check %d times, want 1", got)
	}
}

func TestRunner_RunsAgainAfterTTL(t *testing.T) {
	var runs atomic.Int64
	r := health.NewRunner(nil, 10*time.Millisecond, time.Second, counted("db:responseTime", &runs, health.Pass))
	r.Run(context.Background())
	time.Sleep(30 * time.Millisecond)
	r.Run(context.Background())
	if got := runs.Load(); got != 2 {
		t.Fatalf("ran %d times across two TTLs, want 2", got)
	}
}

func TestRunner_Outcomes(t *testing.T) {
	pass := health.Check{Name: "a:ok", Run: func(context.Context) health.Result { return health.Result{Status: health.Pass} }}
	warn := health.Check{Name: "b:warn", Run: func(context.Context) health.Result { return health.Result{Status: health.Warn} }}
	fail := health.Check{Name: "c:fail", Run: func(context.Context) health.Result { return health.Result{Status: health.Fail} }}
	panics := health.Check{Name: "d:panic", Run: func(context.Context) health.Result { panic("boom: secret detail") }}
	hangs := health.Check{Name: "e:hang", Timeout: 50 * time.Millisecond, Run: func(context.Context) health.Result {
		time.Sleep(time.Hour) // ignores its context, like a stuck driver
		return health.Result{Status: health.Pass}
	}}
	empty := health.Check{Name: "f:empty", Run: func(context.Context) health.Result { return health.Result{} }}
	tests := []struct {
		name   string
		checks []health.Check
		want   health.Status
		failed string
		output string
	}{
		{"all pass", []health.Check{pass}, health.Pass, "", ""},
		{"warn is not failure", []health.Check{pass, warn}, health.Warn, "", ""},
		{"one failure fails all", []health.Check{pass, warn, fail}, health.Fail, "c:fail", ""},
		{"a panic is that check's failure", []health.Check{pass, panics}, health.Fail, "d:panic", "the check panicked (details in the service log)"},
		{"a hang fails at the check's timeout", []health.Check{pass, hangs}, health.Fail, "e:hang", "no answer within 50ms"},
		{"no status means failure", []health.Check{empty}, health.Fail, "f:empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := health.NewRunner(nil, 0, time.Second, tt.checks...).Run(context.Background())
			if rep.Status != tt.want {
				t.Fatalf("status %s, want %s (%+v)", rep.Status, tt.want, rep.Checks)
			}
			if len(rep.Checks) != len(tt.checks) {
				t.Errorf("%d results for %d checks", len(rep.Checks), len(tt.checks))
			}
			if tt.failed != "" {
				res := rep.Checks[tt.failed][0]
				if res.Status != health.Fail || (tt.output != "" && res.Output != tt.output) {
					t.Errorf("%s: %+v", tt.failed, res)
				}
			}
			if r, ok := rep.Checks["a:ok"]; ok && r[0].Status != health.Pass {
				t.Errorf("a passing check was dragged down: %+v", r[0])
			}
		})
	}
}

func TestRunner_AnswersWithinTheOverallDeadline(t *testing.T) {
	slow := health.Check{Name: "slow:responseTime", Timeout: time.Hour, Run: func(ctx context.Context) health.Result {
		<-ctx.Done()
		return health.Result{Status: health.Fail}
	}}
	r := health.NewRunner(nil, 0, 100*time.Millisecond, slow)
	done := make(chan health.Report, 1)
	go func() { done <- r.Run(context.Background()) }()
	select {
	case rep := <-done:
		if rep.Status != health.Fail || rep.Checks["slow:responseTime"][0].Output == "" {
			t.Errorf("%+v", rep)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no answer long after the 100ms deadline")
	}
}

func TestRunner_CallerGivingUpDoesNotCancelTheRun(t *testing.T) {
	var runs atomic.Int64
	r := health.NewRunner(nil, time.Hour, time.Second, counted("db:responseTime", &runs, health.Pass))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if rep := r.Run(ctx); rep.Status != health.Fail {
		t.Errorf("a caller whose context ended got %s", rep.Status)
	}
	if rep := r.Run(context.Background()); rep.Status != health.Pass {
		t.Errorf("the next caller got %s, want the completed run's pass", rep.Status)
	}
	if runs.Load() != 1 {
		t.Errorf("ran %d times", runs.Load())
	}
}

package health

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prodready/service/internal/servicetest"
)

// TestRunner_LogsStateChangesNotRuns: a check that keeps failing is logged
// when it starts failing (with its raw error), again once per repeat
// interval with the count of failed runs, and once when it recovers; the
// hundreds of runs in between write nothing.
func TestRunner_LogsStateChangesNotRuns(t *testing.T) {
	logs := &servicetest.LogBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	var failing atomic.Bool
	check := Check{Name: "thing:responseTime", Timeout: time.Second, Run: func(ctx context.Context) Result {
		if failing.Load() {
			LogFailure(ctx, log, "health: thing check failed", "error", "connection refused")
			return Result{Status: Fail, Output: "the thing did not answer"}
		}
		return Result{Status: Pass}
	}}
	var mu sync.Mutex
	clock := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	r := NewRunner(log, 0, time.Second, check)
	r.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	r.RepeatLogEvery(time.Minute)
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	runs := func(n int) {
		for range n {
			r.Run(t.Context())
			advance(100 * time.Millisecond)
		}
	}
	count := func(msg string) int { return len(logs.Records(t, msg)) }

	runs(10) // passing: nothing to say
	failing.Store(true)
	runs(300) // 30 s of failing runs
	if n, d := count("health check not passing"), count("health: thing check failed"); n != 1 || d != 1 {
		t.Errorf("300 failing runs: %d state lines and %d error lines; want 1 and 1", n, d)
	}
	if n := count("health check still not passing"); n != 0 {
		t.Errorf("%d reminders within the first minute; want none", n)
	}
	advance(time.Minute)
	runs(300)
	still := logs.Records(t, "health check still not passing")
	if len(still) != 1 || still[0]["runs"].(float64) < 300 {
		t.Errorf("after the interval: %v; want one reminder counting the failed runs", still)
	}
	if d := count("health: thing check failed"); d != 2 {
		t.Errorf("%d error lines after one reminder; want 2 (the raw error comes with each line)", d)
	}
	failing.Store(false)
	runs(10)
	back := logs.Records(t, "health check passing again")
	if len(back) != 1 || back[0]["was"] != "fail" {
		t.Errorf("recovery: %v; want one line", back)
	}
	if n := len(logs.Records(t, "")); n != 5 {
		t.Errorf("%d lines for 620 runs; want 5:\n%s", n, logs.String())
	}
}

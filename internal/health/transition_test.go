package health_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prodready/service/internal/health"
)

// TestRunner_OnTransition: a subscriber hears of a check turning fail once,
// not once per run, and of its recovery once, with how long it was failing.
func TestRunner_OnTransition(t *testing.T) {
	var status atomic.Value
	status.Store(health.Pass)
	flaky := health.Check{Name: "cache:responseTime", Run: func(context.Context) health.Result {
		st := status.Load().(health.Status)
		return health.Result{Status: st, Output: "the cache answered " + string(st)}
	}}
	steady := health.Check{Name: "database:responseTime", Run: func(context.Context) health.Result {
		return health.Result{Status: health.Pass}
	}}
	r := health.NewRunner(nil, 0, time.Second, flaky, steady)
	var mu sync.Mutex
	var got, second []health.Transition
	r.OnTransition(func(tr health.Transition) { mu.Lock(); got = append(got, tr); mu.Unlock() })
	r.OnTransition(func(tr health.Transition) { mu.Lock(); second = append(second, tr); mu.Unlock() })

	for _, st := range []health.Status{health.Pass, health.Pass, health.Fail, health.Fail, health.Fail, health.Warn, health.Pass, health.Pass} {
		status.Store(st)
		r.Run(context.Background())
	}
	mu.Lock()
	defer mu.Unlock()
	want := []struct {
		from, to health.Status
		runs     int
	}{{health.Pass, health.Fail, 2}, {health.Fail, health.Warn, 3}, {health.Warn, health.Pass, 1}}
	if len(got) != len(want) {
		t.Fatalf("%d transitions, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		tr := got[i]
		if tr.Check != "cache:responseTime" || tr.From != w.from || tr.To != w.to || tr.Runs != w.runs {
			t.Errorf("transition %d: %+v, want %s->%s after %d runs", i, tr, w.from, w.to, w.runs)
		}
		if tr.Output != "the cache answered "+string(w.to) || tr.Time.IsZero() || tr.Since.IsZero() || tr.Since.After(tr.Time) {
			t.Errorf("transition %d: output, time or since wrong: %+v", i, tr)
		}
	}
	if len(second) != len(got) {
		t.Errorf("the second subscriber heard %d transitions, the first %d", len(second), len(got))
	}
}

// TestRunner_OnTransition_FailingFromTheStart: a check that fails on the first
// run is a change from the assumed pass, reported at once.
func TestRunner_OnTransition_FailingFromTheStart(t *testing.T) {
	down := health.Check{Name: "smtp:responseTime", Run: func(context.Context) health.Result {
		return health.Result{Status: health.Fail, Output: "no answer"}
	}}
	r := health.NewRunner(nil, 0, time.Second, down)
	var got []health.Transition
	r.OnTransition(func(tr health.Transition) { got = append(got, tr) })
	r.Run(context.Background())
	r.Run(context.Background())
	if len(got) != 1 || got[0].From != health.Pass || got[0].To != health.Fail || got[0].Runs != 0 || !got[0].Since.IsZero() {
		t.Fatalf("transitions %+v, want one pass->fail with no earlier runs", got)
	}
}

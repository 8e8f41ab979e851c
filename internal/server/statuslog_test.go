package server

import (
	"testing"
	"time"
)

// TestStatusLogGate: a failing /status answer is logged the first time its
// status comes and then once per interval for that status, with the count
// left out; passing answers are not logged and make the next failure news
// again.
func TestStatusLogGate(t *testing.T) {
	clock := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	g := newStatusLogGate(time.Minute)
	g.now = func() time.Time { return clock }
	type step struct {
		after   time.Duration
		status  int
		log     bool
		skipped int
	}
	steps := []step{
		{0, 200, false, 0},
		{time.Second, 500, true, 0},       // starts failing
		{time.Second, 500, false, 0},      // same answer, within the interval
		{time.Second, 500, false, 0},      //
		{time.Minute, 500, true, 2},       // interval passed: logged, with the count
		{time.Second, 401, true, 0},       // a different failure is news
		{time.Second, 200, false, 0},      // passing: not logged
		{time.Second, 500, true, 0},       // failing again right away: news
		{time.Millisecond, 500, false, 0}, //
		// A client alternating two refusals: a line per code per interval,
		// not one a request.
		{time.Second, 401, true, 0},
		{time.Second, 405, true, 0},
		{time.Second, 401, false, 0},
		{time.Second, 405, false, 0},
		{time.Second, 401, false, 0},
		{time.Second, 405, false, 0},
		{time.Minute, 401, true, 2},
		{time.Second, 405, true, 2},
	}
	for i, s := range steps {
		clock = clock.Add(s.after)
		if log, skipped := g.admit(s.status); log != s.log || skipped != s.skipped {
			t.Errorf("step %d (%d): log=%v skipped=%d; want %v %d", i, s.status, log, skipped, s.log, s.skipped)
		}
	}
}

package server

import (
	"net/http"
	"sync"
	"time"
)

// statusLogGate applies the status route's logging rule to its access-log
// lines, as the health runner does to the checks: a failing answer is logged
// when its status code changes, then at most once per interval, with the
// count of answers left out since the last line. A hundred monitors polling
// a failing /status write a line a minute, not a line a poll. Passing
// answers are never logged (see accessLog).
type statusLogGate struct {
	interval time.Duration
	now      func() time.Time

	mu      sync.Mutex
	last    int       // status of the last answer
	at      time.Time // when the last line was written
	skipped int       // failing answers not logged since
}

func newStatusLogGate(interval time.Duration) *statusLogGate {
	if interval <= 0 {
		interval = time.Minute
	}
	return &statusLogGate{interval: interval, now: time.Now}
}

// admit says whether an answer with status gets an access-log line, and
// how many failing answers went unlogged before it.
func (g *statusLogGate) admit(status int) (log bool, skipped int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if status < http.StatusBadRequest {
		g.last = status
		return false, 0
	}
	if now := g.now(); status != g.last || now.Sub(g.at) >= g.interval {
		skipped = g.skipped
		g.last, g.at, g.skipped = status, now, 0
		return true, skipped
	}
	g.skipped++
	return false, 0
}

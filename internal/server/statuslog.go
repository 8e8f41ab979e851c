package server

import (
	"net/http"
	"sync"
	"time"
)

// statusLogGate applies the status route's logging rule to its access-log
// lines, as the health runner does to the checks: a failing answer is logged
// the first time its status code comes (since the last passing answer),
// then at most once per interval for that code, with the count of its
// answers left out since its last line. A hundred monitors polling a
// failing /status write a line a minute, not a line a poll; and a client
// alternating two refusals (a wrong token's 401, another method's 405)
// gets a line a minute for each, where a gate on the last code alone
// logged every one of them. Passing answers are never logged (see
// accessLog).
type statusLogGate struct {
	interval time.Duration
	now      func() time.Time

	mu    sync.Mutex
	codes map[int]*gatedCode // failing codes seen since the last passing answer
}

// gatedCode is one failing status code's line: when it was written, and
// the answers with that code left out since.
type gatedCode struct {
	at      time.Time
	skipped int
}

func newStatusLogGate(interval time.Duration) *statusLogGate {
	if interval <= 0 {
		interval = time.Minute
	}
	return &statusLogGate{interval: interval, now: time.Now, codes: map[int]*gatedCode{}}
}

// admit says whether an answer with status gets an access-log line, and
// how many answers with that status went unlogged before it.
func (g *statusLogGate) admit(status int) (log bool, skipped int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if status < http.StatusBadRequest {
		clear(g.codes) // the next failure is news again
		return false, 0
	}
	now := g.now()
	c := g.codes[status]
	if c == nil {
		g.codes[status] = &gatedCode{at: now}
		return true, 0
	}
	if now.Sub(c.at) >= g.interval {
		skipped = c.skipped
		c.at, c.skipped = now, 0
		return true, skipped
	}
	c.skipped++
	return false, 0
}

package health

import (
	"log/slog"
	"net"
	"sync"
	"time"
)

// Defaults of HandlerOptions.TokenFailureLimit and TokenFailureWindow
// (status.token_failure_limit, status.token_failure_window).
const (
	DefaultTokenFailureLimit  = 10
	DefaultTokenFailureWindow = time.Minute
)

// maxGuardedClients bounds the memory of the guard. Past it, expired
// entries are swept, then addresses that are not blocked are forgotten.
const maxGuardedClients = 10000

// maxBlockLogs is how many "blocked" warn lines the guard writes in a
// window at most, however many addresses are blocked; the next line counts
// the ones left out.
const maxBlockLogs = 10

// tokenGuard slows down guessing of the status token: a client address
// that presents limit wrong (or missing) tokens within window is answered
// 429 for every further wrong token until that window ends. A right token
// is still served (Handler.Status): behind a proxy many clients share an
// address, and an outsider must not be able to lock the monitor out; with
// tokens of 16 characters or more, learning that a guess was right is no
// shortcut. Other addresses are not
// affected. IPv6 addresses are counted by their /64, which one host
// usually holds whole.
type tokenGuard struct {
	limit  int
	window time.Duration
	now    func() time.Time
	log    *slog.Logger

	mu      sync.Mutex
	clients map[string]*tokenFailures

	logWindow time.Time // start of the current log-rate window
	logs      int       // blocked lines written in it
	unlogged  int       // blocked addresses not logged since the last line
}

type tokenFailures struct {
	first    time.Time // the first failure of the window
	failures int
	refused  int // 429s answered in this window
}

func newTokenGuard(limit int, window time.Duration, now func() time.Time, log *slog.Logger) *tokenGuard {
	if limit <= 0 {
		limit = DefaultTokenFailureLimit
	}
	if window <= 0 {
		window = DefaultTokenFailureWindow
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &tokenGuard{limit: limit, window: window, now: now, log: log, clients: map[string]*tokenFailures{}}
}

// clientKey is the address the failures are counted for.
func clientKey(ip string) string {
	addr := net.ParseIP(ip)
	if addr == nil || addr.To4() != nil {
		return ip
	}
	return addr.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// blocked reports whether ip must be answered 429, and for how long still.
func (g *tokenGuard) blocked(ip string) (time.Duration, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	f := g.clients[clientKey(ip)]
	if f == nil || now.Sub(f.first) >= g.window || f.failures < g.limit {
		return 0, false
	}
	f.refused++
	return f.first.Add(g.window).Sub(now), true
}

// fail counts one wrong or missing token from ip, and logs at warn when it
// blocks the address.
func (g *tokenGuard) fail(ip string) {
	key := clientKey(ip)
	g.mu.Lock()
	now := g.now()
	f := g.clients[key]
	if f == nil || now.Sub(f.first) >= g.window {
		if f == nil && len(g.clients) >= maxGuardedClients {
			g.sweep(now)
		}
		f = &tokenFailures{first: now}
		g.clients[key] = f
	}
	f.failures++
	blockedNow := f.failures == g.limit
	var logIt bool
	var unlogged int
	if blockedNow {
		if now.Sub(g.logWindow) >= g.window {
			g.logWindow, g.logs = now, 0
		}
		if g.logs < maxBlockLogs {
			g.logs++
			logIt, unlogged, g.unlogged = true, g.unlogged, 0
		} else {
			g.unlogged++
		}
	}
	until := f.first.Add(g.window)
	g.mu.Unlock()
	if logIt {
		// Never the token: a wrong guess may be a right token with a typo.
		g.log.Warn("status: too many wrong tokens from one client address; it is answered 429 until the window ends",
			"client", key, "failures", g.limit, "window", g.window.String(), "until", until.UTC().Format(time.RFC3339),
			"other_addresses_blocked_unlogged", unlogged)
	}
}

// sweep forgets expired entries and, if still full, addresses not blocked;
// g.mu must be held.
func (g *tokenGuard) sweep(now time.Time) {
	for k, f := range g.clients {
		if now.Sub(f.first) >= g.window {
			delete(g.clients, k)
		}
	}
	for k, f := range g.clients {
		if len(g.clients) < maxGuardedClients {
			return
		}
		if f.failures < g.limit {
			delete(g.clients, k)
		}
	}
}

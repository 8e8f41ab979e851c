// Package shed protects the service from overload. Past capacity, admitting
// every request makes every request slow; shedding admits at most
// MaxInFlight requests at once, lets the next QueueSize wait up to
// QueueTimeout for a slot, and refuses the rest at once with 503 and
// Retry-After, so the admitted ones stay fast and the refused ones learn
// quickly that they should retry (or go elsewhere).
//
// Where handlers never wait, the backlog of a saturated CPU is not in
// flight but unread in the sockets; MaxReadDelay sheds there too (see
// delay.go).
//
// Probes and the status route are exempt: an overloaded instance must still
// say it is alive and, on /status, that it is shedding.
package shed

import (
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/prodready/service/internal/problem"
	"github.com/prodready/service/internal/server"
)

// Options configure a Shedder.
type Options struct {
	// MaxInFlight is how many requests run at once; 0 turns shedding off.
	MaxInFlight int
	// QueueSize is how many more requests may wait for a slot; beyond it
	// they are refused at once. 0 means none wait.
	QueueSize int
	// QueueTimeout is the longest a request waits for a slot before it is
	// refused. It also sets Retry-After (whole seconds, at least 1).
	QueueTimeout time.Duration
	// Exempt lists route templates that are never queued or refused.
	Exempt []string
	// Logger receives the rate-limited warning; nil means slog.Default().
	Logger *slog.Logger
	// WarnEvery is the shortest interval between two warnings; zero means
	// DefaultWarnEvery.
	WarnEvery time.Duration
	// MaxReadDelay bounds the 90th percentile of how long requests wait
	// unread (in the socket and the run queue): over it two windows in a
	// row, a share of requests is refused; 0 turns this off. It needs
	// ConnContext set on the http.Server.
	MaxReadDelay time.Duration
	// DelayWindow is how long each window of sampled waits lasts; zero
	// means DefaultDelayWindow.
	DelayWindow time.Duration
	// SampleEvery: one request in this many is measured; zero means
	// DefaultSampleEvery.
	SampleEvery int
}

// DefaultWarnEvery spaces the "shedding load" warnings: one line every
// ten seconds says what an operator needs, a line per refused request would
// add work exactly when the service has none to spare.
const DefaultWarnEvery = 10 * time.Second

// Stats is a snapshot of the shedder's counters. The totals only grow, so a
// monitor can report rates from differences; this is what a metrics
// exporter reads.
type Stats struct {
	MaxInFlight int // the configured limit; 0 when shedding is off
	QueueSize   int
	InFlight    int    // requests holding a slot now
	Queued      int    // requests waiting for a slot now
	Admitted    uint64 // requests that got a slot, at once or after waiting
	WaitedTotal uint64 // of those, how many waited in the queue first
	Shed        uint64 // requests refused with 503 (QueueFull + TimedOut + Backlogged)
	QueueFull   uint64 // refused at once: the queue was full
	TimedOut    uint64 // refused after waiting QueueTimeout
	Backlogged  uint64 // refused at once: requests waited unread past MaxReadDelay

	MaxReadDelay time.Duration // the configured limit; 0 when off
	ReadDelay    time.Duration // the 90th percentile wait unread in the last window
	// Sampled counts the requests whose wait unread was measured (a
	// TCP_INFO system call each): one in SampleEvery, at most 128 a window.
	Sampled uint64
	// Pipelined counts the sampled requests left out because their bytes
	// arrived before their connection's previous answer went out: they
	// waited behind their own connection, not for a CPU.
	Pipelined uint64
	// AdmitPercent is the share of requests admitted now: 100 unless
	// requests wait unread past MaxReadDelay.
	AdmitPercent float64
}

// Shedder admits, queues or refuses requests. Its zero value is not usable;
// call New.
type Shedder struct {
	slots        chan struct{} // a token per running request
	queueSize    int64
	timeout      time.Duration
	retryAfter   string
	exempt       map[string]bool
	log          *slog.Logger
	warnEvery    time.Duration
	maxReadDelay time.Duration
	delayWindow  time.Duration
	sampleEvery  uint32

	window     delayWindow   // this window's sampled waits (delay.go)
	admit      atomic.Uint32 // the share admitted, of admitScale
	readDelay  atomic.Int64  // nanoseconds, the last window's quantile
	epoch      time.Time     // when New ran; nextSample counts from it
	nextSample atomic.Int64  // nanoseconds from epoch before which no request is sampled
	sampled    atomic.Uint64
	pipelined  atomic.Uint64
	backlogged atomic.Uint64
	queued     atomic.Int64
	admitted   atomic.Uint64
	waited     atomic.Uint64
	queueFull  atomic.Uint64
	timedOut   atomic.Uint64
	lastWarn   atomic.Int64  // unix nanoseconds of the last warning
	warnedAt   atomic.Uint64 // the Shed total at the last warning
	// flushPending: a warning is scheduled for the end of the interval.
	flushPending atomic.Bool
}

// New returns a Shedder; with o.MaxInFlight 0 its middleware only passes
// requests on.
func New(o Options) *Shedder {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.WarnEvery <= 0 {
		o.WarnEvery = DefaultWarnEvery
	}
	if o.DelayWindow <= 0 {
		o.DelayWindow = DefaultDelayWindow
	}
	if o.SampleEvery <= 0 {
		o.SampleEvery = DefaultSampleEvery
	}
	if o.MaxInFlight <= 0 {
		o.MaxReadDelay = 0 // shedding off: no connection is measured either
	}
	s := &Shedder{
		queueSize:    int64(max(o.QueueSize, 0)),
		timeout:      o.QueueTimeout,
		retryAfter:   strconv.Itoa(max(1, int(math.Ceil(o.QueueTimeout.Seconds())))),
		exempt:       map[string]bool{},
		log:          o.Logger,
		warnEvery:    o.WarnEvery,
		maxReadDelay: max(o.MaxReadDelay, 0),
		delayWindow:  o.DelayWindow,
		epoch:        time.Now(),
		sampleEvery:  uint32(min(o.SampleEvery, 1<<20)), //nolint:gosec // positive and bounded by the min
	}
	s.admit.Store(admitScale)
	if o.MaxInFlight > 0 {
		s.slots = make(chan struct{}, o.MaxInFlight)
	}
	for _, r := range o.Exempt {
		s.exempt[r] = true
	}
	return s
}

// Stats returns the current counters. It is safe to call concurrently with
// requests, and cheap: a few atomic loads.
func (s *Shedder) Stats() Stats {
	st := Stats{
		QueueSize:   int(s.queueSize),
		Queued:      int(s.queued.Load()),
		Admitted:    s.admitted.Load(),
		WaitedTotal: s.waited.Load(),
		QueueFull:   s.queueFull.Load(),
		TimedOut:    s.timedOut.Load(),
		Backlogged:  s.backlogged.Load(),
		ReadDelay:   time.Duration(s.readDelay.Load()),
		Sampled:     s.sampled.Load(),
		Pipelined:   s.pipelined.Load(),
	}
	if s.slots != nil {
		st.MaxInFlight, st.InFlight = cap(s.slots), len(s.slots)
		st.MaxReadDelay = s.maxReadDelay
		st.AdmitPercent = float64(s.admit.Load()) * 100 / admitScale
	}
	st.Shed = st.QueueFull + st.TimedOut + st.Backlogged
	return st
}

// exemptRoute says whether the request is for a probe or the status route,
// whatever its method: another method on /status has no route template
// (gin answers it through NoMethod, a 405 of the route's own), but it must
// not wait for a slot or be shed either.
func (s *Shedder) exemptRoute(c *gin.Context) bool {
	route := c.FullPath()
	if route == "" {
		route = c.Request.URL.Path
	}
	return s.exempt[route]
}

// Middleware admits the request, makes it wait for a slot, or answers 503.
// Place it after the request ID (the 503 carries it), as server.Options.Admit
// does: refused requests are counted and summarised in one warning every
// WarnEvery, and left out of the access log (server.Summarized) instead of
// a line each, which would cost the most when the service can least afford
// it.
func (s *Shedder) Middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		if s.slots == nil {
			c.Next()
			return
		}
		s.sample(c.Request.Context()) // probes too: they wait in the same sockets
		if s.exemptRoute(c) {
			c.Next()
			return
		}
		if s.shedForBacklog() {
			s.backlogged.Add(1)
			s.refuse(c, s.backlogDetail())
			return
		}
		select {
		case s.slots <- struct{}{}:
		default:
			if !s.wait(c) {
				return
			}
		}
		s.admitted.Add(1)
		defer func() { <-s.slots }() // also when a later handler panics
		c.Next()
	}
}

// backlogDetail is a backlog refusal's detail: the wait measured in the
// last window, or, once it is under the limit again, that admission is
// still coming back (a share more each window).
func (s *Shedder) backlogDetail() string {
	d := time.Duration(s.readDelay.Load())
	pct := fmt.Sprintf("%.0f%%", 100*float64(s.admit.Load())/admitScale)
	if d > s.maxReadDelay {
		return "requests wait " + d.Round(time.Millisecond).String() + " unread: the service cannot keep up (admitting " + pct + ")"
	}
	return "recovering from a backlog of unread requests: admitting " + pct + ", more each " + s.delayWindow.String()
}

// wait queues the request for a slot; it reports whether one was obtained.
// Otherwise the 503 has been written.
func (s *Shedder) wait(c *gin.Context) bool {
	if s.queued.Add(1) > s.queueSize {
		s.queued.Add(-1)
		s.queueFull.Add(1)
		s.refuse(c, "too many requests are waiting")
		return false
	}
	defer s.queued.Add(-1)
	t := time.NewTimer(s.timeout)
	defer t.Stop()
	select {
	case s.slots <- struct{}{}:
		s.waited.Add(1)
		return true
	case <-t.C:
		s.timedOut.Add(1)
		s.refuse(c, fmt.Sprintf("no capacity freed up within %s", s.timeout))
		return false
	case <-c.Request.Context().Done():
		// The client gave up while waiting: nobody reads an answer, and the
		// request was neither served nor refused by us. Its status says so
		// in the access log (nginx's 499), instead of a 200 of no bytes.
		c.AbortWithStatus(problem.StatusClientClosedRequest)
		return false
	}
}

func (s *Shedder) refuse(c *gin.Context, why string) {
	server.Summarized(c)
	c.Header("Retry-After", s.retryAfter)
	problem.Write(c, problem.Overloaded(why+"; retry after "+s.retryAfter+" s"))
	s.warn()
}

// warn logs at most one warning every warnEvery, with the number refused
// since the previous one. Refusals inside the interval are summed into one
// more warning at its end, so the tail of a burst is logged too (refused
// requests get no access-log line: this is their only record in the log).
func (s *Shedder) warn() {
	now := time.Now().UnixNano()
	last := s.lastWarn.Load()
	if wait := last + int64(s.warnEvery) - now; wait > 0 {
		if s.flushPending.CompareAndSwap(false, true) {
			time.AfterFunc(time.Duration(wait), func() {
				s.flushPending.Store(false)
				s.warn()
			})
		}
		return
	}
	if !s.lastWarn.CompareAndSwap(last, now) {
		return
	}
	st := s.Stats()
	total := st.Shed
	since := total - s.warnedAt.Swap(total)
	if since == 0 {
		return
	}
	s.log.Warn("shedding load: requests refused with 503",
		"refused", since, "refused_total", total, "in_flight", st.InFlight,
		"max_in_flight", st.MaxInFlight, "queued", st.Queued, "queue_size", st.QueueSize,
		"backlogged_total", st.Backlogged, "read_delay", st.ReadDelay.String(),
		"max_read_delay", st.MaxReadDelay.String(), "admit_percent", st.AdmitPercent)
}

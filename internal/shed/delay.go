package shed

import (
	"context"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/prodready/service/internal/tcpinfo"
)

// The in-flight limit only sees requests the service has read. When
// handlers never wait (a cached read, a small SQLite table) and the CPUs
// are saturated, the backlog is elsewhere: requests sit unread in the
// sockets, then in the scheduler's run queue, while in-flight stays low and
// every answer is late. The kernel knows how long: TCP_INFO's
// tcpi_last_data_recv is the time since the connection's last data
// arrived, so read when a request reaches the middleware it is how long
// that request waited before the service got to it.
//
// One request in Options.SampleEvery is measured. Every window, the 90th
// percentile of the waits is compared with MaxReadDelay: not the median,
// because the Go scheduler is not first in, first out (goroutines that
// overflow a CPU's local run queue wait in a global one that is looked at
// every 61st turn), so a saturated service serves most connections quickly
// and starves some for seconds. Two windows in a row over the limit (one is
// a burst, a GC pause, a noisy neighbour) start shedding: the middleware
// admits only a share of requests, cut by a quarter on each window over
// the limit and raised by a sixteenth on each one under it (additive
// increase, multiplicative decrease, as TCP does with its window), and
// refuses the rest at once. A refusal costs a fifth of a cheap request's
// CPU, so refusing some gives the admitted ones their CPU back, and the
// backlog drains (docs/PERFORMANCE.md, overload).

const (
	admitScale = 1 << 16 // admit is a fraction of admitScale
	// admitFloor keeps a trickle admitted, so the service goes on
	// measuring real requests and recovers without an operator.
	admitFloor = admitScale / 32
	// DefaultDelayWindow is how long a window of sampled waits lasts.
	DefaultDelayWindow = 100 * time.Millisecond
	// DefaultSampleEvery: one request in this many is measured (it costs
	// a system call).
	DefaultSampleEvery = 8
	// delayQuantile of a window's waits is compared with the limit.
	delayQuantile = 0.9
	// windowSamples is the most samples a window takes, one every
	// 1/windowSamples of it at most (sample).
	windowSamples = 128
	// saturatedWindows in a row start shedding, so one slow window (a GC
	// pause, a noisy neighbour) refuses nothing.
	saturatedWindows = 2
)

// connKey holds, in a connection's context, its syscall.RawConn.
type connKey struct{}

// ConnContext is http.Server.ConnContext: it keeps each TCP connection's
// raw socket in its context, so that the middleware can ask the kernel how
// long a request waited. Other connections (a Unix socket, a test's pipe)
// are not measured.
func (s *Shedder) ConnContext(ctx context.Context, c net.Conn) context.Context {
	if s.maxReadDelay <= 0 {
		return ctx
	}
	if w, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = w.NetConn() // server.Refusals' wrapper
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return ctx
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return ctx
	}
	return context.WithValue(ctx, connKey{}, rc)
}

// sample measures one request in sampleEvery, and at most windowSamples
// in a window, spread over it: how long its bytes waited. The cap is what
// keeps the cost flat under load: one in eight of 40,000 requests a second
// would be 5,000 system calls a second, where a window's quantile needs a
// hundred or so samples; with it, at most 1,280 a second whatever the rate
// (docs/PERFORMANCE.md).
func (s *Shedder) sample(ctx context.Context) {
	if s.maxReadDelay <= 0 || (s.sampleEvery > 1 && rand.Uint32N(s.sampleEvery) != 0) { //nolint:gosec // sampling needs no cryptographic randomness
		return
	}
	rc, ok := ctx.Value(connKey{}).(syscall.RawConn)
	if !ok {
		return // not TCP: it must not take a TCP request's turn below
	}
	now := time.Now()
	at, next := int64(now.Sub(s.epoch)), s.nextSample.Load() // monotonic: a clock step stops no sampling
	if at < next || !s.nextSample.CompareAndSwap(next, at+int64(s.delayWindow/windowSamples)) {
		return // too soon after the last sample, or another request took this one
	}
	sent, unread, ok := tcpinfo.LastData(rc) // read as a request arrives: how long it waited
	if !ok {
		return
	}
	// Bytes that arrived before this connection's last answer went out
	// were sent ahead of it (pipelined, or a burst in one write): they
	// waited behind their own connection's earlier requests, which net/http
	// serves one at a time, not for a CPU. Counted, a client pipelining a
	// burst of cheap requests would look like a backlog and get everyone
	// else refused.
	if unread > sent {
		s.pipelined.Add(1)
		s.window.busyAt(now) // traffic, though not measured: no idle credit for this window
		return
	}
	s.sampled.Add(1)
	s.observe(unread, now)
}

// delayWindow collects a window's sampled waits and judges them when the
// window ends. The request whose sample closes the window does the judging,
// not a goroutine of its own: on a saturated CPU a goroutine waits its turn
// like every other, and the judgment would come seconds late.
type delayWindow struct {
	mu        sync.Mutex
	end       time.Time
	waits     []time.Duration
	sorted    []time.Duration // reused, to judge without allocating
	saturated int             // windows in a row over the limit
	lastBusy  time.Time       // the last sample left out (pipelined): requests came
}

// busyAt notes a sampled request that was left out of the measure: the
// windows until now were not idle, whatever they measured.
func (w *delayWindow) busyAt(now time.Time) {
	w.mu.Lock()
	if now.After(w.lastBusy) {
		w.lastBusy = now
	}
	w.mu.Unlock()
}

// observe records one sampled wait and, once the window has ended, judges
// it and sets the share of requests admitted.
func (s *Shedder) observe(d time.Duration, now time.Time) {
	w := &s.window
	w.mu.Lock()
	defer w.mu.Unlock()
	w.waits = append(w.waits, d) // at most windowSamples and a few a window (sample)
	if now.Before(w.end) {
		return
	}
	// Windows that ended with no sample at all: traffic too light for one
	// request in sampleEvery to come, which is no backlog.
	idle := uint32(0)
	if !w.end.IsZero() {
		from := w.end
		if w.lastBusy.After(from) { // requests came, left out of the measure (pipelined)
			from = w.lastBusy
		}
		for passed := now.Sub(from); passed >= s.delayWindow && idle < 16; passed -= s.delayWindow {
			idle++
		}
	}
	w.end = now.Add(s.delayWindow)
	w.sorted = append(w.sorted[:0], w.waits...)
	w.waits = w.waits[:0]
	slices.Sort(w.sorted)
	q := w.sorted[int(delayQuantile*float64(len(w.sorted)-1))]
	s.readDelay.Store(int64(q))
	a := s.admit.Load()
	if q > s.maxReadDelay {
		if w.saturated++; w.saturated >= saturatedWindows {
			a = max(a*3/4, admitFloor)
		}
	} else {
		// Each window under the limit, the idle ones too, admits 1/16 more:
		// after a burst, a lightly used service is back to admitting every
		// request within 16 windows of time, not 16 sampled windows (at a
		// few requests a second, minutes).
		w.saturated = 0
		a = min(a+(1+idle)*admitScale/16, admitScale)
	}
	s.admit.Store(a)
}

// shedForBacklog decides, for one request, whether it is refused to drain a
// standing queue: with probability 1 - the admitted share.
func (s *Shedder) shedForBacklog() bool {
	a := s.admit.Load()
	return a < admitScale && rand.Uint32N(admitScale) >= a //nolint:gosec // nor does choosing whom to refuse
}

package monitoring

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/newrelic/go-agent/v3/newrelic"
)

// counter is a monotonic count the agent samples.
type counter struct{ n atomic.Uint64 }

func (c *counter) add()          { c.n.Add(1) }
func (c *counter) load() float64 { return float64(c.n.Load()) }

// gauges samples the service's own counters (failed requests, syslog
// drops, alert mails, cache failures) and records each as a custom metric.
// The counters are totals since start; the metric is the increase since the
// previous sample, so a New Relic chart or alert reads "per minute".
type gauges struct {
	mu      sync.Mutex
	reads   map[string]func() float64
	last    map[string]float64
	app     *newrelic.Application
	done    chan struct{}
	stopped chan struct{}
}

func newGauges() *gauges {
	return &gauges{reads: map[string]func() float64{}, last: map[string]float64{}}
}

// Gauge registers a counter of the service to report as the custom metric
// Custom/<name> (the agent adds the prefix), read by read, a running total.
// It does nothing when monitoring is off.
func (a *Agent) Gauge(name string, read func() float64) {
	if !a.On() {
		return
	}
	a.metrics.mu.Lock()
	defer a.metrics.mu.Unlock()
	a.metrics.reads[name] = read
	a.metrics.last[name] = read() // count from now: earlier totals were before monitoring
}

func (g *gauges) start(app *newrelic.Application, every time.Duration) {
	g.app, g.done, g.stopped = app, make(chan struct{}), make(chan struct{})
	go func() {
		defer close(g.stopped)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				g.sample()
			case <-g.done:
				return
			}
		}
	}()
}

// stop ends the sampling with one last sample, for the final harvest.
func (g *gauges) stop() {
	if g.done == nil {
		return
	}
	close(g.done)
	<-g.stopped
	g.sample()
}

func (g *gauges) sample() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for name, read := range g.reads {
		v := read()
		g.app.RecordCustomMetric(name, max(v-g.last[name], 0))
		g.last[name] = v
	}
}

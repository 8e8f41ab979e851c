package shed

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prodready/service/internal/health"
)

// Check is the status route's view of shedding: warn when requests were
// refused since the previous check, with how many, so an instance that is
// past its capacity says so where monitors look.
func (s *Shedder) Check() health.Check {
	var last, lastBacklog atomic.Uint64 // a timed-out run may overlap the next one
	return health.Check{Name: "http:shedding", ComponentType: "component", Timeout: time.Second,
		Run: func(context.Context) health.Result {
			st := s.Stats()
			if st.MaxInFlight == 0 {
				return health.Result{Status: health.Pass, Output: "shedding off (http.max_in_flight is 0)"}
			}
			prev := last.Swap(st.Shed)
			backlogPrev := lastBacklog.Swap(st.Backlogged)
			if st.Shed > prev {
				backlog := min(st.Backlogged-backlogPrev, st.Shed-prev)
				return health.Result{Status: health.Warn, ObservedValue: st.Shed - prev, ObservedUnit: "requests",
					Output: fmt.Sprintf("%d requests refused with 503 since the last check: %d to drain requests waiting unread (%s), %d beyond %d in flight and %d queued",
						st.Shed-prev, backlog, readDelay(st), st.Shed-prev-backlog, st.MaxInFlight, st.QueueSize)}
			}
			return health.Result{Status: health.Pass, ObservedValue: st.InFlight, ObservedUnit: "in flight",
				Output: fmt.Sprintf("%d of %d in flight, %d of %d queued; %s",
					st.InFlight, st.MaxInFlight, st.Queued, st.QueueSize, readDelay(st))}
		}}
}

// readDelay says how long requests wait unread, against the limit.
func readDelay(st Stats) string {
	if st.MaxReadDelay == 0 {
		return "read-delay shedding off (http.max_read_delay is 0)"
	}
	return fmt.Sprintf("requests waited unread %s (90th percentile), limit %s, admitting %.0f%%",
		st.ReadDelay, st.MaxReadDelay, st.AdmitPercent)
}

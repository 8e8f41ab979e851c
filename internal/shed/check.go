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
	var last atomic.Uint64 // a timed-out run may overlap the next one
	return health.Check{Name: "http:shedding", ComponentType: "component", Timeout: time.Second,
		Run: func(context.Context) health.Result {
			st := s.Stats()
			if st.MaxInFlight == 0 {
				return health.Result{Status: health.Pass, Output: "shedding off (http.max_in_flight is 0)"}
			}
			prev := last.Swap(st.Shed)
			if st.Shed > prev {
				return health.Result{Status: health.Warn, ObservedValue: st.Shed - prev, ObservedUnit: "requests",
					Output: fmt.Sprintf("%d requests refused with 503 since the last check: more than %d in flight and %d queued",
						st.Shed-prev, st.MaxInFlight, st.QueueSize)}
			}
			return health.Result{Status: health.Pass, ObservedValue: st.InFlight, ObservedUnit: "in flight",
				Output: fmt.Sprintf("%d of %d in flight, %d of %d queued", st.InFlight, st.MaxInFlight, st.Queued, st.QueueSize)}
		}}
}

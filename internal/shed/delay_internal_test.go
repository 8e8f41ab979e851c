package shed

import (
	"testing"
	"time"
)

// After a backlog, windows that passed with no sample (traffic too light
// for one) count as windows under the limit: a lightly used service admits
// every request again within 16 windows of time, where it took 16 sampled
// windows, minutes at a few requests a second. A wait over the limit earns
// nothing, however long the gap before it.
func TestObserve_IdleWindowsCountAsUnderTheLimit(t *testing.T) {
	const window = 100 * time.Millisecond
	tests := []struct {
		name string
		gap  time.Duration // from the end of the last judged window to the sample
		wait time.Duration
		want uint32 // the share admitted after it, of admitScale
	}{
		{"the next window, under the limit", 0, time.Millisecond, admitFloor + admitScale/16},
		{"three windows later, under the limit", 3 * window, time.Millisecond, admitFloor + 4*admitScale/16},
		{"two seconds later, under the limit", 2 * time.Second, time.Millisecond, admitScale},
		{"two seconds later, over the limit", 2 * time.Second, 80 * time.Millisecond, admitFloor},
		{"two seconds of pipelined samples only, then under the limit", -2 * time.Second, time.Millisecond, admitFloor + admitScale/16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Options{MaxInFlight: 1, MaxReadDelay: 50 * time.Millisecond, DelayWindow: window})
			s.admit.Store(admitFloor)
			end := time.Now()
			s.window.end = end
			gap := tt.gap
			if gap < 0 { // -gap of requests left out of the measure, the last just before this sample
				gap = -gap
				s.window.busyAt(end.Add(gap - time.Millisecond))
			}
			s.observe(tt.wait, end.Add(gap))
			if got := s.admit.Load(); got != tt.want {
				t.Errorf("admitting %.1f%%, want %.1f%%", 100*float64(got)/admitScale, 100*float64(tt.want)/admitScale)
			}
		})
	}
}

package monitoring

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prodready/service/internal/health"
)

// connState is what the agent's collector calls have shown: the agent has no
// API that tells "refused" from "unreachable", so the transport records
// every answer.
type connState struct {
	mu sync.Mutex
	// The latest preconnect or connect answer: an HTTP status, or a
	// transport error (status 0).
	connectStatus int
	connectErr    string
	// The latest data call's failure, "" once one succeeds again, and since
	// when the data calls have failed.
	harvestErr   string
	failingSince time.Time
}

// stateTransport records each collector answer in state. The request URL
// holds the license key: nothing here logs or keeps it.
type stateTransport struct {
	base  http.RoundTripper
	state *connState
}

func (t *stateTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	method := r.URL.Query().Get("method")
	resp, err := t.base.RoundTrip(r)
	status, reason := 0, ""
	switch {
	case err != nil:
		reason = err.Error() // a transport error carries no URL, so no license key
	case resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted:
		status, reason = resp.StatusCode, fmt.Sprintf("HTTP %d", resp.StatusCode)
	default:
		status = resp.StatusCode
	}
	s := t.state
	s.mu.Lock()
	defer s.mu.Unlock()
	if method == "preconnect" || method == "connect" {
		s.connectStatus, s.connectErr = status, reason
		return resp, err
	}
	if reason == "" {
		s.harvestErr, s.failingSince = "", time.Time{}
	} else {
		if s.harvestErr == "" {
			s.failingSince = time.Now()
		}
		s.harvestErr = reason
	}
	return resp, err
}

// CheckName is the check's name on /status.
const CheckName = "newrelic:connected"

// Check reports the agent's connection on /status: pass when connected; warn
// while connecting or when the collector cannot be reached (an APM outage
// must not page anyone: the service itself is fine); fail when New Relic
// refused the license key or the application, since then nothing is
// monitored until someone fixes the configuration.
func (a *Agent) Check() health.Check {
	return health.Check{Name: CheckName, ComponentType: "component", Timeout: time.Second,
		Run: func(context.Context) health.Result {
			if !a.On() {
				return health.Result{Status: health.Warn, Output: "monitoring is off: " + a.off}
			}
			// WaitForConnection(0) answers at once: nil when connected, the
			// collector's error once it disconnected the agent for good.
			err := a.app.WaitForConnection(0)
			s := a.state
			s.mu.Lock()
			defer s.mu.Unlock()
			if err == nil {
				if s.harvestErr != "" {
					return health.Result{Status: health.Warn, ObservedValue: time.Since(s.failingSince).Round(time.Second).Seconds(), ObservedUnit: "s",
						Output: "connected, but the collector has not taken data since " + s.failingSince.UTC().Format(time.RFC3339) + " (" + s.harvestErr + "); the agent keeps it and retries"}
				}
				return health.Result{Status: health.Pass}
			}
			if !strings.HasPrefix(err.Error(), "timeout") { // not "not yet": the collector sent the agent away
				return health.Result{Status: health.Fail, Output: "New Relic disconnected the agent (" + err.Error() + "): check the account and restart"}
			}
			switch s.connectStatus {
			case http.StatusUnauthorized, http.StatusForbidden, http.StatusConflict, http.StatusGone:
				return health.Result{Status: health.Fail, ObservedValue: s.connectStatus, ObservedUnit: "http status",
					Output: fmt.Sprintf("New Relic refused the agent (HTTP %d): check newrelic.license_key and newrelic.app_name", s.connectStatus)}
			}
			if s.connectErr != "" {
				return health.Result{Status: health.Warn, Output: "New Relic's collector is unreachable (" + s.connectErr + "); the agent retries"}
			}
			return health.Result{Status: health.Warn, Output: "connecting to New Relic"}
		}}
}

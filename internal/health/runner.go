package health

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"
)

// CheckResult is one check's entry in the answer, in the draft's field names.
type CheckResult struct {
	ComponentType string    `json:"componentType,omitempty"`
	ObservedValue any       `json:"observedValue,omitempty"`
	ObservedUnit  string    `json:"observedUnit,omitempty"`
	Status        Status    `json:"status"`
	Time          time.Time `json:"time"`
	Output        string    `json:"output,omitempty"`
}

// Report is the outcome of one run of every check.
type Report struct {
	Status Status
	Checks map[string][]CheckResult // keyed "component:measurement", one entry each
	Time   time.Time
}

// Runner runs the checks concurrently, each under its own timeout and all
// under one deadline, and reuses a report for TTL. Concurrent callers share
// one run, so however many monitors poll, each dependency sees at most one
// check per TTL.
type Runner struct {
	checks   []Check
	ttl      time.Duration
	deadline time.Duration
	now      func() time.Time
	log      *slog.Logger

	mu       sync.Mutex
	last     *Report
	inflight chan struct{} // closed when the current run finishes

	notifyMu     sync.Mutex         // serializes transitions and their delivery
	onTransition []func(Transition) // see OnTransition
	states       map[string]*checkState

	repeatLog time.Duration        // see RepeatLogEvery
	logMu     sync.Mutex           // guards logged
	logged    map[string]time.Time // failing checks: when last logged
}

// NewRunner returns a Runner. ttl 0 disables caching (concurrent callers are
// still coalesced); deadline bounds a whole run. Failing checks and their
// details are logged to log at warn level, since the answer itself only
// carries sanitized output.
func NewRunner(log *slog.Logger, ttl, deadline time.Duration, checks ...Check) *Runner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runner{checks: checks, ttl: ttl, deadline: deadline, now: time.Now, log: log, repeatLog: DefaultRepeatLogInterval}
}

// Register adds a check; call it before serving.
func (r *Runner) Register(c Check) { r.checks = append(r.checks, c) }

// Run returns a report no older than the TTL. ctx only bounds how long this
// caller waits: the run itself is not tied to one client, so a monitor that
// hangs up does not cancel the answer for the others.
func (r *Runner) Run(ctx context.Context) Report {
	r.mu.Lock()
	if r.last != nil && r.now().Sub(r.last.Time) < r.ttl {
		rep := *r.last
		r.mu.Unlock()
		return rep
	}
	wait := r.inflight
	if wait == nil {
		wait = make(chan struct{})
		r.inflight = wait
		go r.runAll(wait) //nolint:gosec // G118: on purpose not the caller's context; see the doc comment
	}
	r.mu.Unlock()

	select {
	case <-wait:
	case <-ctx.Done():
		return Report{Status: Fail, Time: r.now(), Checks: map[string][]CheckResult{
			"status:deadline": {{Status: Fail, Time: r.now(), Output: "the request ended before the checks finished"}},
		}}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return *r.last
}

func (r *Runner) runAll(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), r.deadline)
	defer cancel()
	type named struct {
		name string
		res  CheckResult
	}
	results := make(chan named, len(r.checks))
	for _, c := range r.checks {
		go func() { results <- named{c.Name, r.runOne(ctx, c)} }()
	}
	rep := Report{Status: Pass, Checks: make(map[string][]CheckResult, len(r.checks))}
	pending := make(map[string]Check, len(r.checks))
	for _, c := range r.checks {
		pending[c.Name] = c
	}
	for len(pending) > 0 {
		select {
		case n := <-results:
			rep.Checks[n.name] = []CheckResult{n.res}
			delete(pending, n.name)
		case <-ctx.Done():
			// The overall deadline passed: whatever has not answered fails,
			// and the answer goes out on time. Those goroutines end at their
			// own timeout, and their late results are dropped.
			for name, c := range pending {
				rep.Checks[name] = []CheckResult{{ComponentType: c.ComponentType, Status: Fail, Time: r.now(),
					Output: fmt.Sprintf("no answer within the status deadline of %s", r.deadline)}}
			}
			pending = nil
		}
	}
	for _, res := range rep.Checks {
		rep.Status = worst(rep.Status, res[0].Status)
	}
	rep.Time = r.now()

	// notifyMu is taken before the next run can start, so transitions are
	// computed and delivered in the order of the runs.
	r.notifyMu.Lock()
	defer r.notifyMu.Unlock()
	changes := r.transitions(rep)
	r.logStates(rep, changes)
	r.mu.Lock()
	r.last = &rep
	r.inflight = nil
	r.mu.Unlock()
	close(done)
	for _, t := range changes {
		for _, fn := range r.onTransition {
			fn(t)
		}
	}
}

// runOne runs a check under its own timeout. A check that panics or hangs
// becomes that check's failure, never a broken answer.
func (r *Runner) runOne(parent context.Context, c Check) (res CheckResult) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = r.deadline
	}
	ctx, cancel := context.WithTimeout(r.quietRun(parent, c.Name), timeout)
	defer cancel()
	out := make(chan Result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				r.log.Error("health check panicked", "check", c.Name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				out <- Result{Status: Fail, Output: "the check panicked (details in the service log)"}
			}
		}()
		out <- c.Run(ctx)
	}()
	var got Result
	select {
	case got = <-out:
		if got.Status != Pass && ctx.Err() != nil { // it gave up because its time ran out
			got.Output = fmt.Sprintf("no answer within %s", timeout)
		}
	case <-ctx.Done():
		got = Result{Status: Fail, Output: fmt.Sprintf("no answer within %s", timeout)}
	}
	if got.Status == "" {
		got.Status = Fail
	}
	return CheckResult{ComponentType: c.ComponentType, ObservedValue: got.ObservedValue, ObservedUnit: got.ObservedUnit,
		Status: got.Status, Time: r.now().UTC(), Output: got.Output}
}

func worst(a, b Status) Status {
	rank := map[Status]int{Pass: 0, Warn: 1, Fail: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

package health

import "time"

// Transition is one check changing status between two runs of a Runner.
// Every check starts out assumed passing, so a check that fails on the very
// first run is a transition from Pass, and a check that always passes never
// produces one.
type Transition struct {
	Check  string // e.g. "database:responseTime"
	From   Status
	To     Status
	Output string    // the new result's sanitized output
	Time   time.Time // when the run that saw the change finished
	// Runs is how many consecutive runs the check spent in From, and Since
	// when the first of them finished (zero for the assumed initial Pass),
	// so a subscriber can say "recovered after 14 failed runs over 3m".
	Runs  int
	Since time.Time
}

// OnTransition adds fn to the functions called, in order, after every run
// in which a check changed status: once per changed check. Call it before
// serving. fn runs on the runner's goroutine after the report is stored,
// so it must not block (queue slow work such as mail); callers of Run are
// not held up by it.
func (r *Runner) OnTransition(fn func(Transition)) {
	r.onTransition = append(r.onTransition, fn)
}

// checkState is what the runner remembers of each check between runs.
type checkState struct {
	status Status
	runs   int
	since  time.Time
}

// transitions updates the remembered state of every check from rep and
// returns the changes, in a stable order (the order checks were registered).
// runAll calls it with notifyMu held.
func (r *Runner) transitions(rep Report) []Transition {
	if r.states == nil {
		r.states = make(map[string]*checkState, len(r.checks))
	}
	var out []Transition
	for _, c := range r.checks {
		res, ok := rep.Checks[c.Name]
		if !ok || len(res) == 0 {
			continue
		}
		st, seen := r.states[c.Name]
		if !seen {
			st = &checkState{status: Pass}
			r.states[c.Name] = st
		}
		now := res[0].Status
		if now == st.status {
			st.runs++
			if st.since.IsZero() {
				st.since = rep.Time
			}
			continue
		}
		out = append(out, Transition{Check: c.Name, From: st.status, To: now, Output: res[0].Output,
			Time: rep.Time, Runs: st.runs, Since: st.since})
		*st = checkState{status: now, runs: 1, since: rep.Time}
	}
	return out
}

package health

import (
	"context"
	"log/slog"
	"time"
)

// DefaultRepeatLogInterval is how often a check that stays failing is
// logged again when RepeatLogEvery was not called.
const DefaultRepeatLogInterval = time.Minute

// RepeatLogEvery sets how often a check that stays failing (or warning) is
// logged again; call it before serving. The runner logs a check when its
// status changes and then at most once per d, with how many runs it has
// failed, so a monitor polling every second during an outage adds no lines:
// the log says what changed, not how often someone asked.
func (r *Runner) RepeatLogEvery(d time.Duration) {
	if d > 0 {
		r.repeatLog = d
	}
}

type quietKey struct{}

// LogFailure is how a check logs the raw error behind a failing result. It
// logs at warn unless the runner marked this run quiet: the check was
// already failing and was logged less than the repeat interval ago.
func LogFailure(ctx context.Context, log *slog.Logger, msg string, args ...any) {
	if quiet, _ := ctx.Value(quietKey{}).(bool); quiet {
		return
	}
	log.WarnContext(ctx, msg, args...)
}

// quietRun returns ctx marked quiet when check's details need not be logged
// this run (see LogFailure).
func (r *Runner) quietRun(ctx context.Context, check string) context.Context {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	if at, failing := r.logged[check]; failing && r.now().Sub(at) < r.repeatLog {
		return context.WithValue(ctx, quietKey{}, true)
	}
	return ctx
}

// logStates logs the run's status changes, and the checks still not
// passing whose last line is older than the repeat interval. runAll calls
// it with notifyMu held, after transitions.
func (r *Runner) logStates(rep Report, changes []Transition) {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	if r.logged == nil {
		r.logged = map[string]time.Time{}
	}
	changed := map[string]bool{}
	for _, t := range changes {
		changed[t.Check] = true
		if t.To == Pass {
			delete(r.logged, t.Check)
			r.log.Info("health check passing again", "check", t.Check, "was", string(t.From),
				"runs", t.Runs, "since", t.Since.UTC().Format(time.RFC3339))
			continue
		}
		r.logged[t.Check] = rep.Time
		r.log.Warn("health check not passing", "check", t.Check, "status", string(t.To), "was", string(t.From), "output", t.Output)
	}
	for _, c := range r.checks {
		res, ok := rep.Checks[c.Name]
		if !ok || changed[c.Name] || res[0].Status == Pass {
			continue
		}
		if at, seen := r.logged[c.Name]; seen && rep.Time.Sub(at) < r.repeatLog {
			continue
		}
		r.logged[c.Name] = rep.Time
		st := r.states[c.Name]
		r.log.Warn("health check still not passing", "check", c.Name, "status", string(res[0].Status), "output", res[0].Output,
			"runs", st.runs, "since", st.since.UTC().Format(time.RFC3339))
	}
}

package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/prodready/service/internal/logging"
)

// One failing request should give one mail. A store failure is logged at
// error level and then answered with a 500; a panic is logged and then
// reported. Mailing the log record and the 500 separately would double
// every alert, so error records logged while a request is served are held
// in the request's scope (BeginRequest): a panic or 5xx report of the same
// request takes them into its mail, and only when the request ends without
// one are they mailed on their own (with email.on_error_log).

// maxScopeRecords bounds what one request may hold.
const maxScopeRecords = 20

type scopeKey struct{}

// requestScope holds the error records of one request.
type requestScope struct {
	mu      sync.Mutex
	reports []Report
	done    bool // taken by a panic or 5xx report, or ended
}

func scopeFrom(ctx context.Context) *requestScope {
	if ctx == nil {
		return nil
	}
	s, _ := ctx.Value(scopeKey{}).(*requestScope)
	return s
}

// add holds rep for the end of the request; false when the request's
// reports were already sent (a record logged after the response).
func (s *requestScope) add(rep Report) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return false
	}
	if len(s.reports) < maxScopeRecords {
		s.reports = append(s.reports, rep)
	}
	return true
}

// take ends the scope and returns its records as lines for a mail.
func (s *requestScope) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = true
	lines := make([]string, 0, len(s.reports))
	for _, rep := range s.reports {
		lines = append(lines, rep.record)
	}
	s.reports = nil
	return lines
}

// end ends the scope and returns the records no report took.
func (s *requestScope) end() []Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return nil
	}
	s.done = true
	reps := s.reports
	s.reports = nil
	return reps
}

// BeginRequest starts collecting the error records logged with the returned
// context (through LogHandler). Call end when the request is over: records
// that no panic or 5xx report took are then mailed on their own when
// email.on_error_log is set. A disabled Reporter returns ctx unchanged.
func (r *Reporter) BeginRequest(ctx context.Context) (_ context.Context, end func()) {
	if !r.enabled() {
		return ctx, func() {}
	}
	s := &requestScope{}
	return context.WithValue(ctx, scopeKey{}, s), func() {
		reps := s.end()
		if !r.cfg.OnErrorLog {
			return
		}
		for _, rep := range reps {
			r.Report(context.Background(), rep)
		}
	}
}

// LogHandler wraps next so that error-level records become reports: held
// for the request when logged with a request's context (see BeginRequest),
// mailed at once otherwise, when email.on_error_log is set. The Reporter
// logs its own trouble at warn, and records from this package are skipped
// anyway, so a failing SMTP server cannot start a loop.
func (r *Reporter) LogHandler(next slog.Handler) slog.Handler {
	if !r.enabled() {
		return next
	}
	return &logHandler{next: next, r: r}
}

type logHandler struct {
	next  slog.Handler
	r     *Reporter
	attrs []slog.Attr // from WithAttrs, shown in the record line
}

func (h *logHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *logHandler) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Level >= slog.LevelError && !fromThisPackage(rec.PC) {
		rep := h.report(rec)
		if s := scopeFrom(ctx); s == nil || !s.add(rep) {
			if h.r.cfg.OnErrorLog {
				h.r.Report(ctx, rep)
			}
		}
	}
	return h.next.Handle(ctx, rec)
}

// HandleAccess keeps the access log's fast path (logging.LogAccess) through
// this handler: an access record below error level is never mailed, so it
// goes straight on.
func (h *logHandler) HandleAccess(ctx context.Context, a logging.Access) error {
	if a.Level >= slog.LevelError {
		return h.Handle(ctx, a.Record(time.Now()))
	}
	if next, ok := h.next.(logging.AccessHandler); ok {
		return next.HandleAccess(ctx, a)
	}
	return h.next.Handle(ctx, a.Record(time.Now()))
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logHandler{next: h.next.WithAttrs(attrs), r: h.r, attrs: append(h.attrs[:len(h.attrs):len(h.attrs)], attrs...)}
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	return &logHandler{next: h.next.WithGroup(name), r: h.r, attrs: h.attrs}
}

// report turns an error record into a Report: its message, the first error
// attribute, the caller's stack, and the whole record as one line.
func (h *logHandler) report(rec slog.Record) Report {
	rep := Report{Kind: KindErrorLog, Message: rec.Message, Time: rec.Time, pcs: callers()}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", rec.Time.UTC().Format(time.RFC3339Nano), rec.Level, rec.Message)
	var addAttr func(prefix string, a slog.Attr)
	addAttr = func(prefix string, a slog.Attr) {
		key := prefix + a.Key
		v := a.Value.Resolve()
		switch {
		case secretName(a.Key):
			// A field named like a credential ("password", "token") is
			// redacted, as a header of that name is: the mail goes to a list.
			fmt.Fprintf(&b, " %s=%s", key, redacted)
		case v.Kind() == slog.KindGroup:
			if a.Key != "" { // an empty key inlines the group, as slog's handlers do
				prefix = key + "."
			}
			for _, ga := range v.Group() {
				addAttr(prefix, ga)
			}
		default:
			if err, ok := v.Any().(error); ok && rep.Err == nil {
				rep.Err = err
			}
			fmt.Fprintf(&b, " %s=%s", key, truncate(v.String(), 300))
		}
	}
	add := func(a slog.Attr) bool {
		addAttr("", a)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	rec.Attrs(add)
	rep.record = b.String()
	if rep.Err == nil {
		rec.Attrs(func(a slog.Attr) bool { // a string "error" attribute
			if a.Key == "error" || a.Key == "err" {
				rep.Err = errors.New(a.Value.String())
				return false
			}
			return true
		})
	}
	return rep
}

// fromThisPackage reports whether pc is in this package.
func fromThisPackage(pc uintptr) bool {
	f := runtime.FuncForPC(pc)
	return f != nil && strings.HasPrefix(f.Name(), modulePath+"/internal/alert.")
}

// callers returns the program counters of the goroutine's stack. They are
// cheap to take; the text is written only if the record is mailed on its
// own (stackText).
func callers() []uintptr {
	pcs := make([]uintptr, 64)
	return pcs[:runtime.Callers(3, pcs)]
}

// stackText formats program counters as debug.Stack does, so the mail and
// the fingerprint read them like a panic's stack. The logging frames on top
// (log/slog, the handlers) are left out: the stack starts at the code that
// logged.
func stackText(pcs []uintptr) []byte {
	var b strings.Builder
	frames := runtime.CallersFrames(pcs)
	top := true
	for {
		f, more := frames.Next()
		if top && isLoggingFrame(f.Function) && more {
			continue
		}
		top = false
		fmt.Fprintf(&b, "%s(...)\n\t%s:%d\n", f.Function, f.File, f.Line)
		if !more {
			break
		}
	}
	return []byte(b.String())
}

func isLoggingFrame(fn string) bool {
	return strings.HasPrefix(fn, "log/slog.") || strings.HasPrefix(fn, modulePath+"/internal/alert.") ||
		strings.HasPrefix(fn, modulePath+"/internal/logging.")
}

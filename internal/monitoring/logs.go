package monitoring

import (
	"context"
	"log/slog"
	"slices"
	"sync"

	"github.com/newrelic/go-agent/v3/integrations/logcontext-v2/nrslog"
	"github.com/newrelic/go-agent/v3/newrelic"

	"github.com/prodready/service/internal/logging"
)

// LogHandler wraps next for logs in context: a record logged with a
// request's context gets trace.id and span.id attributes, in every sink, so
// a log line can be found from a trace and back; and when log forwarding is
// on, the record also goes to New Relic Logs (through nrslog), linked to the
// span it was logged in. It returns next when monitoring is off.
func (a *Agent) LogHandler(next slog.Handler) slog.Handler {
	if !a.On() {
		return next
	}
	h := &logHandler{next: next}
	if a.forwardLogs {
		h.fwd = &forwarder{mu: &sync.Mutex{}, h: nrslog.WrapHandler(a.app, discard{})}
	}
	return h
}

type logHandler struct {
	next slog.Handler
	// Under a group, slog nests every attribute added to a record, and a
	// line whose trace.id sits inside a group cannot be found by trace id.
	// So a grouped handler keeps next as it was before its first group
	// (ungrouped) and what was derived since (derived, in order), and adds
	// the trace attributes to ungrouped before replaying them.
	ungrouped slog.Handler
	derived   []func(slog.Handler) slog.Handler
	fwd       *forwarder // nil when forwarding is off
}

// forwarder serialises the nrslog handler: it caches the agent's settings
// and linking data without locks ("a data race in async use cases", its
// source says), and a request log is written from many goroutines. Its
// inner handler discards: the records are written by next.
type forwarder struct {
	mu *sync.Mutex // shared by the handlers derived with WithAttrs and WithGroup
	h  slog.Handler
}

func (h *logHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.fwd != nil {
		fr := r.Clone()
		if id := logging.RequestID(ctx); id != "" {
			fr.AddAttrs(slog.String("request_id", id))
		}
		h.fwd.mu.Lock()
		_ = h.fwd.h.Handle(ctx, fr) // only queues the record in the agent: it cannot fail
		h.fwd.mu.Unlock()
	}
	if txn := newrelic.FromContext(ctx); txn != nil {
		if md := txn.GetTraceMetadata(); md.TraceID != "" {
			trace := []slog.Attr{slog.String("trace.id", md.TraceID), slog.String("span.id", md.SpanID)}
			if h.ungrouped == nil {
				r = r.Clone()
				r.AddAttrs(trace...)
				return h.next.Handle(ctx, r)
			}
			next := h.ungrouped.WithAttrs(trace)
			for _, with := range h.derived {
				next = with(next)
			}
			return next.Handle(ctx, r)
		}
	}
	return h.next.Handle(ctx, r)
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return h.derive(false, func(s slog.Handler) slog.Handler { return s.WithAttrs(attrs) })
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.derive(true, func(s slog.Handler) slog.Handler { return s.WithGroup(name) })
}

func (h *logHandler) derive(group bool, with func(slog.Handler) slog.Handler) *logHandler {
	out := &logHandler{next: with(h.next)}
	switch {
	case h.ungrouped != nil:
		out.ungrouped, out.derived = h.ungrouped, append(slices.Clip(h.derived), with)
	case group:
		out.ungrouped, out.derived = h.next, []func(slog.Handler) slog.Handler{with}
	}
	if h.fwd != nil {
		h.fwd.mu.Lock()
		out.fwd = &forwarder{mu: h.fwd.mu, h: with(h.fwd.h)}
		h.fwd.mu.Unlock()
	}
	return out
}

// discard is the handler under nrslog: it forwards, next writes.
type discard struct{}

func (discard) Enabled(context.Context, slog.Level) bool  { return true }
func (discard) Handle(context.Context, slog.Record) error { return nil }
func (d discard) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discard) WithGroup(string) slog.Handler           { return d }

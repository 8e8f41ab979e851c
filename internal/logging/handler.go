package logging

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// fanout is the process's one slog.Handler. A record passes the global level
// (a LevelVar, so SetLevel changes it for every logger at once), gets the
// request_id from its context, then goes to every sink whose own minimum it
// meets.
type fanout struct {
	global *slog.LevelVar
	sinks  []sink
}

// sink is one destination: a formatting handler and its own minimum level.
type sink struct {
	name string
	// min is the sink's own minimum; follow means it has none (an empty
	// level in config) and the global level alone decides.
	min    slog.Level
	follow bool
	h      slog.Handler
	// fast writes access records (LogAccess) on a JSON stream sink without
	// a slog.Record; nil on the other sinks, and once a group is open.
	fast *accessJSON
}

func (s sink) accepts(l slog.Level) bool { return s.follow || l >= s.min }

func (f *fanout) Enabled(_ context.Context, l slog.Level) bool {
	if l < f.global.Level() {
		return false
	}
	for _, s := range f.sinks {
		if s.accepts(l) {
			return true
		}
	}
	return false
}

func (f *fanout) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < f.global.Level() { // callers other than slog.Logger may skip Enabled
		return nil
	}
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	var errs []error
	for _, s := range f.sinks {
		if !s.accepts(r.Level) {
			continue
		}
		if err := s.h.Handle(ctx, r); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
		}
	}
	return errors.Join(errs...)
}

// WithAttrs and WithGroup apply to every sink, so logger.With("k", v) shows
// up the same on stdout, stderr and syslog.
func (f *fanout) WithAttrs(attrs []slog.Attr) slog.Handler {
	return f.derive(func(s *sink) {
		s.h = s.h.WithAttrs(attrs)
		if s.fast != nil {
			s.fast = s.fast.withAttrs(attrs)
		}
	})
}

// WithGroup turns the access fast path off: the access record's attributes
// would belong in the group, which the encoder does not write.
func (f *fanout) WithGroup(name string) slog.Handler {
	if name == "" {
		return f
	}
	return f.derive(func(s *sink) { s.h, s.fast = s.h.WithGroup(name), nil })
}

func (f *fanout) derive(with func(*sink)) *fanout {
	sinks := make([]sink, len(f.sinks))
	for i, s := range f.sinks {
		with(&s)
		sinks[i] = s
	}
	return &fanout{global: f.global, sinks: sinks}
}

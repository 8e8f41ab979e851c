package logging

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/prodready/service/internal/jsonstr"
)

// Access is the one access-log record a request gets ("request"), with its
// fields in the order they are written. The server writes one per request,
// so it has a path of its own (LogAccess): a JSON stream sink writes it with
// a purpose-built encoder, the same bytes slog's JSON handler would write,
// without building a slog.Record, looking up the caller's frame or going
// through encoding/json for the float (slog does, "floats are rare"): that
// was most of what a request's log line cost. Every other sink (text,
// syslog) and every other record goes through slog as before.
type Access struct {
	Level      slog.Level
	Method     string
	Route      string
	Path       string
	Status     int
	DurationMS float64
	Bytes      int
	ClientIP   string
	Suppressed int       // 0 leaves the attribute out
	Time       time.Time // the record's time; zero: when it is logged
}

// AccessMessage is the access record's msg.
const AccessMessage = "request"

// AccessHandler is a slog.Handler that can write an access record without
// a slog.Record. The handler Setup builds is one; a wrapping handler (the
// alert reporter's) implements it by passing the record on, so the fast
// path survives the wrapping. Time is when the record is written.
type AccessHandler interface {
	slog.Handler
	HandleAccess(ctx context.Context, a Access) error
}

// LogAccess writes a at its level through l: on the fast path when l's
// handler is an AccessHandler, otherwise as l.LogAttrs would. The caller has
// checked l.Enabled for a.Level.
func LogAccess(ctx context.Context, l *slog.Logger, a Access) {
	if h, ok := l.Handler().(AccessHandler); ok {
		_ = h.HandleAccess(ctx, a)
		return
	}
	l.LogAttrs(ctx, a.Level, AccessMessage, a.attrs()...)
}

// attrs are the record's attributes, for the slog path.
func (a *Access) attrs() []slog.Attr {
	attrs := []slog.Attr{
		slog.String("method", a.Method),
		slog.String("route", a.Route),
		slog.String("path", a.Path),
		slog.Int("status", a.Status),
		slog.Float64("duration_ms", a.DurationMS),
		slog.Int("bytes", a.Bytes),
		slog.String("client_ip", a.ClientIP),
	}
	if a.Suppressed > 0 {
		attrs = append(attrs, slog.Int("suppressed", a.Suppressed))
	}
	return attrs
}

// Record is a as a slog.Record logged at t, for handlers without the fast
// path.
func (a *Access) Record(t time.Time) slog.Record {
	r := slog.NewRecord(t, a.Level, AccessMessage, 0)
	r.AddAttrs(a.attrs()...)
	return r
}

// HandleAccess is Handle for an access record: JSON stream sinks write it
// with the encoder below, the others get a slog.Record (built once).
func (f *fanout) HandleAccess(ctx context.Context, a Access) error {
	if a.Level < f.global.Level() {
		return nil
	}
	now := a.Time
	if now.IsZero() {
		now = time.Now()
	}
	id := RequestID(ctx)
	var rec slog.Record
	built := false
	var err error
	for _, s := range f.sinks {
		if !s.accepts(a.Level) {
			continue
		}
		if s.fast != nil {
			if e := s.fast.write(now, &a, id); e != nil && err == nil {
				err = e
			}
			continue
		}
		if !built {
			rec, built = a.Record(now), true
			if id != "" {
				rec.AddAttrs(slog.String("request_id", id))
			}
		}
		if e := s.h.Handle(ctx, rec); e != nil && err == nil {
			err = e
		}
	}
	return err
}

// lockedWriter serialises the writes of a JSON sink's slog handler and of
// its access encoder, which share the writer.
//
// With a delay (log.access_flush_interval), the access encoder's info and
// debug lines are held, for at most delay and at most heldLimit bytes, and
// written together: one write system call for many requests instead of one
// each, which was most of the access log's cost (docs/PERFORMANCE.md).
// Every other line (the slog handler's, and an access line at warn: a 5xx)
// is written at once, after what is held, so lines keep their order and a
// warning or an error never waits in memory. Logging.Close writes what is
// held; a process killed outright loses at most delay of access lines.
type lockedWriter struct {
	mu    sync.Mutex
	w     io.Writer
	delay time.Duration
	held  []byte
	timer *time.Timer // writes what is held, delay after it began to be
}

// heldLimit is how much lockedWriter holds before it writes: under a
// hundred access lines, one write of a size pipes and files take whole.
const heldLimit = 16 << 10

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.held) == 0 {
		return l.w.Write(p)
	}
	l.held = append(l.held, p...)
	if err := l.flushLocked(); err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeLater writes p, or holds it to write with the next ones (see
// lockedWriter). It copies p.
func (l *lockedWriter) writeLater(p []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.delay <= 0 {
		_, err := l.w.Write(p)
		return err
	}
	wasEmpty := len(l.held) == 0
	l.held = append(l.held, p...)
	if len(l.held) >= heldLimit {
		return l.flushLocked()
	}
	if wasEmpty {
		if l.timer == nil {
			l.timer = time.AfterFunc(l.delay, func() { _ = l.flush() })
		} else {
			l.timer.Reset(l.delay)
		}
	}
	return nil
}

// stopHolding writes what is held, and every later line at once.
func (l *lockedWriter) stopHolding() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.delay = 0
	return l.flushLocked()
}

// flush writes what is held.
func (l *lockedWriter) flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.flushLocked()
}

func (l *lockedWriter) flushLocked() error {
	if len(l.held) == 0 {
		return nil
	}
	_, err := l.w.Write(l.held)
	if cap(l.held) > 4*heldLimit { // one huge line's buffer is not kept
		l.held = nil
	} else {
		l.held = l.held[:0]
	}
	return err
}

// accessJSON writes access records to a JSON sink. Its prefix is what the
// sink's handler preformatted from WithAttrs (`,"service":"notes-api"`),
// rendered by slog itself (a probe handler with the same attributes) the
// first time it is needed, so both paths write the same bytes.
type accessJSON struct {
	w      *lockedWriter
	out    *probeOutput
	probe  slog.Handler // a JSON handler writing into out, with the sink's WithAttrs
	once   sync.Once
	prefix []byte
}

// probeOutput is where every probe of one sink writes, one render at a time.
type probeOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (p *probeOutput) Write(b []byte) (int, error) { return p.buf.Write(b) }

func newAccessJSON(w *lockedWriter) *accessJSON {
	out := &probeOutput{}
	return &accessJSON{w: w, out: out, probe: slog.NewJSONHandler(out, nil)}
}

// withAttrs is the encoder for the sink's handler after WithAttrs(attrs).
func (j *accessJSON) withAttrs(attrs []slog.Attr) *accessJSON {
	return &accessJSON{w: j.w, out: j.out, probe: j.probe.WithAttrs(attrs)}
}

// probeHead is what the probe writes before the preformatted attributes
// for a record with no time (left out), level INFO and an empty message.
const probeHead = `{"level":"INFO","msg":""`

func (j *accessJSON) preformatted() []byte {
	j.once.Do(func() {
		j.out.mu.Lock()
		defer j.out.mu.Unlock()
		j.out.buf.Reset()
		_ = j.probe.Handle(context.Background(), slog.NewRecord(time.Time{}, slog.LevelInfo, "", 0))
		out := bytes.TrimSuffix(j.out.buf.Bytes(), []byte("}\n"))
		j.prefix = bytes.Clone(bytes.TrimPrefix(out, []byte(probeHead)))
	})
	return j.prefix
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (j *accessJSON) write(t time.Time, a *Access, requestID string) error {
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, `{"time":"`...)
	b = appendRFC3339Nano(b, t)
	b = append(b, '"')
	b = jsonstr.AppendSlogField(b, "level", a.Level.String())
	b = append(b, `,"msg":"`+AccessMessage+`"`...)
	b = append(b, j.preformatted()...)
	b = jsonstr.AppendSlogField(b, "method", a.Method)
	b = jsonstr.AppendSlogField(b, "route", a.Route)
	b = jsonstr.AppendSlogField(b, "path", a.Path)
	b = jsonstr.AppendIntField(b, "status", int64(a.Status))
	b = appendJSONFloat(jsonstr.AppendKey(b, "duration_ms"), a.DurationMS)
	b = jsonstr.AppendIntField(b, "bytes", int64(a.Bytes))
	b = jsonstr.AppendSlogField(b, "client_ip", a.ClientIP)
	if a.Suppressed > 0 {
		b = jsonstr.AppendIntField(b, "suppressed", int64(a.Suppressed))
	}
	if requestID != "" {
		b = jsonstr.AppendSlogField(b, "request_id", requestID)
	}
	b = append(b, "}\n"...)
	var err error
	if a.Level < slog.LevelWarn {
		err = j.w.writeLater(b)
	} else {
		_, err = j.w.Write(b)
	}
	if cap(b) <= 4<<10 { // a huge record's buffer is not kept
		*bp = b
		bufPool.Put(bp)
	}
	return err
}

// appendRFC3339Nano appends t.AppendFormat(b, time.RFC3339Nano), which is
// what slog's JSON handler writes, with two digits at a time instead of the
// time package's general number formatting (a third of the access record's
// cost before). Years outside 0 to 9999 (and offsets of 100 hours or more) go to the
// time package.
func appendRFC3339Nano(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	_, offset := t.Zone()
	if year < 0 || year > 9999 || offset <= -100*3600 || offset >= 100*3600 {
		return t.AppendFormat(b, time.RFC3339Nano)
	}
	hour, minute, sec := t.Clock()
	b = append2(append2(b, year/100), year%100)
	b = append2(append(b, '-'), int(month))
	b = append2(append(b, '-'), day)
	b = append2(append(b, 'T'), hour)
	b = append2(append(b, ':'), minute)
	b = append2(append(b, ':'), sec)
	if ns := t.Nanosecond(); ns != 0 { // nine digits, trailing zeros dropped
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i > 0; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := len(frac)
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, frac[:n]...)
	}
	if offset == 0 {
		return append(b, 'Z')
	}
	zone := offset / 60 // minutes, as the time package truncates it
	if zone < 0 {
		b = append(b, '-')
		zone = -zone
	} else {
		b = append(b, '+')
	}
	return append2(append(append2(b, zone/60), ':'), zone%60)
}

// append2 appends n, from 0 to 99, as two digits.
func append2(b []byte, n int) []byte {
	const digits = "0123456789"
	return append(b, digits[n/10], digits[n%10])
}

// appendJSONFloat appends f as encoding/json writes a float64 (which is what
// slog's JSON handler calls): the shortest 'f' form, or 'e' with a short
// exponent outside [1e-6, 1e21). NaN and infinities, which JSON cannot
// hold, are written as strings, as slog falls back to.
func appendJSONFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return jsonstr.AppendSlog(b, strconv.FormatFloat(f, 'g', -1, 64))
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

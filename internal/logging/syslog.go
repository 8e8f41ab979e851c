package logging

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// Syslog message formats (RFC 5424 and the older BSD format, RFC 3164) and
// the handler that turns slog records into them. The body of each message is
// the record formatted as on stdout (JSON by default), so structured
// attributes survive the trip through the daemon. The connection, queue and
// reconnects are in syslog_writer.go.

// facilities are the syslog facility codes by config name (RFC 5424 6.2.1).
var facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5,
	"lpr": 6, "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19,
	"local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// Syslog severities used for slog levels (RFC 5424 6.2.1).
const (
	severityError   = 3
	severityWarning = 4
	severityInfo    = 6
	severityDebug   = 7
)

// severity maps a slog level to a syslog severity: debug 7, info 6, warn 4,
// error 3. Levels between the named ones take the one below them.
func severity(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return severityError
	case l >= slog.LevelWarn:
		return severityWarning
	case l >= slog.LevelInfo:
		return severityInfo
	}
	return severityDebug
}

// framing separates messages on a stream.
type framing int

const (
	frameNone       framing = iota // datagrams: one message per packet
	frameOctetCount                // RFC 6587 3.4.1: "LEN SP MSG"
	frameNewline                   // RFC 6587 3.4.2: "MSG LF"
)

// maxDatagram caps a message sent as one datagram: a UDP payload is at most
// 65,507 bytes, and a larger write fails for good rather than for now.
const maxDatagram = 64000

// syslogFormat builds messages. It is read-only after newSyslogFormat.
type syslogFormat struct {
	rfc3164  bool
	facility int
	framing  framing
	maxLen   int // 0: no limit
	// after is the header after PRI and timestamp, computed once:
	// RFC 5424: " HOSTNAME APP-NAME PROCID MSGID SD "
	// RFC 3164: " HOSTNAME TAG[PID]: " (no HOSTNAME on the local socket)
	after []byte
}

func newSyslogFormat(protocol, facility, network, hostname, appName string, pid int) (*syslogFormat, error) {
	f := &syslogFormat{}
	var ok bool
	if f.facility, ok = facilities[facility]; !ok {
		return nil, fmt.Errorf("log.syslog.facility: unknown facility %q", facility)
	}
	local := network == "unixgram" || network == "unix"
	switch network {
	case "unixgram", "udp":
		f.framing, f.maxLen = frameNone, maxDatagram
	case "unix":
		f.framing = frameNewline // as syslog-ng's unix-stream() source reads it
	case "tcp", "tcp+tls":
		f.framing = frameOctetCount
		if protocol == "rfc3164" {
			f.framing = frameNewline // BSD-format receivers expect the traditional LF
		}
	default:
		return nil, fmt.Errorf("log.syslog.network: unknown network %q (want unixgram, unix, udp, tcp or tcp+tls)", network)
	}
	pidText := strconv.Itoa(pid)
	switch protocol {
	case "rfc5424", "":
		f.after = fmt.Appendf(nil, " %s %s %s - - ",
			headerField(hostname, 255), headerField(appName, 48), pidText)
	case "rfc3164":
		f.rfc3164 = true
		// glibc's syslog(3) leaves the hostname out on the local socket and
		// the daemon adds its own; on the network the receiver needs it.
		if !local {
			f.after = fmt.Appendf(f.after, " %s", headerField(hostname, 255))
		}
		f.after = fmt.Appendf(f.after, " %s[%s]: ", headerField(appName, 32), pidText)
	default:
		return nil, fmt.Errorf("log.syslog.protocol: unknown protocol %q (want rfc5424 or rfc3164)", protocol)
	}
	return f, nil
}

// headerField makes s a valid header field: printable US-ASCII without
// spaces (others become '_'), at most max bytes, and "-" (the NILVALUE)
// when empty.
func headerField(s string, maxLen int) string {
	if s == "" {
		return "-"
	}
	b := []byte(s)
	if len(b) > maxLen {
		b = b[:maxLen]
	}
	for i, c := range b {
		if c < 33 || c > 126 {
			b[i] = '_'
		}
	}
	return string(b)
}

// message returns one framed message for a record whose formatted body is
// body (one line from slog's handler, with its final newline). Any other CR
// or LF in the body is escaped as \r or \n, so that a record stays one
// message whatever the framing and one line in the daemon's files.
func (f *syslogFormat) message(level slog.Level, t time.Time, body []byte) []byte {
	if n := len(body); n > 0 && body[n-1] == '\n' {
		body = body[:n-1]
	}
	var hdr [64]byte
	h := append(hdr[:0], '<')
	h = strconv.AppendInt(h, int64(f.facility*8+severity(level)), 10)
	h = append(h, '>')
	switch {
	case f.rfc3164:
		if t.IsZero() {
			t = time.Now()
		}
		h = t.AppendFormat(h, time.Stamp) // "Jan _2 15:04:05", local time
	case t.IsZero():
		h = append(h, "1 -"...)
	default:
		h = append(h, "1 "...)
		h = t.AppendFormat(h, "2006-01-02T15:04:05.000000Z07:00")
	}
	size := len(h) + len(f.after) + escapedLen(body)
	if f.maxLen > 0 && size > f.maxLen {
		body = truncateEscaped(body, f.maxLen-len(h)-len(f.after))
		size = len(h) + len(f.after) + escapedLen(body)
	}
	out := make([]byte, 0, size+12)
	if f.framing == frameOctetCount {
		out = strconv.AppendInt(out, int64(size), 10)
		out = append(out, ' ')
	}
	out = append(out, h...)
	out = append(out, f.after...)
	out = appendEscaped(out, body)
	if f.framing == frameNewline {
		out = append(out, '\n')
	}
	return out
}

func escapedLen(b []byte) int {
	n := len(b)
	for _, c := range b {
		if c == '\n' || c == '\r' {
			n++
		}
	}
	return n
}

func appendEscaped(out, b []byte) []byte {
	for _, c := range b {
		switch c {
		case '\n':
			out = append(out, '\\', 'n')
		case '\r':
			out = append(out, '\\', 'r')
		default:
			out = append(out, c)
		}
	}
	return out
}

// truncateEscaped cuts b so that its escaped form fits in n bytes.
func truncateEscaped(b []byte, n int) []byte {
	size := 0
	for i, c := range b {
		w := 1
		if c == '\n' || c == '\r' {
			w = 2
		}
		if size+w > n {
			return b[:i]
		}
		size += w
	}
	return b
}

// syslogHandler formats records with slog's JSON or text handler and queues
// them on the writer. It never blocks on the network.
//
// slog's handlers write to a writer fixed at construction, and the message
// header needs the record's level and time, which Write does not get: so
// Handle stores them in out, under out's lock, before the inner handler
// calls out.Write with the body, on the same goroutine.
type syslogHandler struct {
	out   *syslogOut // shared by every handler derived with WithAttrs/WithGroup
	inner slog.Handler
}

type syslogOut struct {
	mu     sync.Mutex
	level  slog.Level
	time   time.Time
	format *syslogFormat
	w      *syslogWriter
}

func newSyslogHandler(w *syslogWriter, bodyFormat string) (*syslogHandler, error) {
	out := &syslogOut{format: w.format, w: w}
	inner, err := formatHandler(out, bodyFormat)
	if err != nil {
		return nil, err
	}
	return &syslogHandler{out: out, inner: inner}, nil
}

func (h *syslogHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *syslogHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.out.w.closed.Load() {
		return nil
	}
	if h.out.w.full() { // don't format what the queue cannot take
		h.out.w.dropped.Add(1)
		return nil
	}
	h.out.mu.Lock()
	defer h.out.mu.Unlock()
	h.out.level, h.out.time = r.Level, r.Time
	return h.inner.Handle(ctx, r)
}

func (h *syslogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &syslogHandler{out: h.out, inner: h.inner.WithAttrs(attrs)}
}

func (h *syslogHandler) WithGroup(name string) slog.Handler {
	return &syslogHandler{out: h.out, inner: h.inner.WithGroup(name)}
}

// Write receives one formatted record from the inner handler, with out.mu
// held by Handle. It copies p (slog reuses its buffer) into a new message.
func (o *syslogOut) Write(p []byte) (int, error) {
	o.w.enqueue(o.format.message(o.level, o.time, p))
	return len(p), nil
}

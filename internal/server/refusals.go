package server

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prodready/service/internal/problem"
)

// Refusals wraps the listener the http.Server serves, so that the answers
// net/http writes on its own, before any handler runs, are problem+json
// like every other error the service gives, with a request ID that is also
// in the log:
//
//   - a request line or header it cannot parse (400), a missing or
//     malformed Host, a bad Content-Length;
//   - a header section over http.Server.MaxHeaderBytes (431);
//   - an HTTP version it does not serve (HTTP/9.9: net/http says 505) and
//     a Transfer-Encoding other than chunked (501);
//   - an Expect other than 100-continue (417, with no body at all).
//
// net/http writes the first four as one fixed text/plain response straight
// to the connection, and the last through its own response, so no
// middleware sees them. The wrapper recognises those exact bytes (their
// status line, the text/plain and Connection: close headers, and no Date
// header, which every other response has) and writes a problem instead.
//
// The 505 and 501 become 400: both are the client's doing, an input the
// server refused, and a 5xx would tell an operator (or a monitor counting
// 5xx) that the server failed. The status each one had is in the log line.
//
// Every other write passes through unchanged, after a check of a few bytes.
func Refusals(ln net.Listener, o RefusalOptions) net.Listener {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.LogPerSecond <= 0 {
		o.LogPerSecond = 10
	}
	return &refusalListener{Listener: ln, log: &refusalLog{o: o}}
}

// RefusalOptions configures Refusals.
type RefusalOptions struct {
	Logger *slog.Logger
	// MaxHeaderBytes is the http.Server's, for the 431's detail.
	MaxHeaderBytes int
	// LogPerSecond caps the refusals logged a second (default 10): a
	// client sending garbage in a loop must not fill the disk. The ones
	// over it are counted, and the next line logged says how many.
	LogPerSecond int
}

type refusalListener struct {
	net.Listener
	log *refusalLog
}

func (l *refusalListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &refusalConn{Conn: c, log: l.log}, nil
}

// refusalConn is a connection whose canned refusals are rewritten. It keeps
// what net/http and the service look for on a *net.TCPConn: CloseWrite
// (net/http half-closes after a 431), ReadFrom (sendfile and splice),
// SyscallConn, and NetConn for code that needs the connection itself
// (load shedding's TCP_INFO reads).
type refusalConn struct {
	net.Conn
	log *refusalLog
}

// NetConn returns the accepted connection, as tls.Conn.NetConn does.
func (c *refusalConn) NetConn() net.Conn { return c.Conn }

func (c *refusalConn) Write(b []byte) (int, error) {
	// "HTTP/1.1 4xx" or "HTTP/1.1 5xx": anything else (every 1xx, 2xx and
	// 3xx, and every later write of a body) is passed on after this.
	if len(b) < 13 || b[9] < '4' || !bytes.HasPrefix(b, httpVersionPrefix) {
		return c.Conn.Write(b)
	}
	r, ok := parseRefusal(b)
	if !ok {
		return c.Conn.Write(b)
	}
	if _, err := c.Conn.Write(c.log.answer(r, c.RemoteAddr())); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (c *refusalConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *refusalConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(c.Conn, r)
}

func (c *refusalConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, syscall.EINVAL
}

var (
	httpVersionPrefix = []byte("HTTP/1.1 ")
	// net/http's headers for the answers it writes itself (server.go,
	// conn.serve), and the start of its 417.
	cannedHeaders   = []byte("\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n")
	expectationLine = []byte("HTTP/1.1 417 Expectation Failed\r\n")
	dateHeader      = []byte("\r\nDate: ")
)

// refusal is one canned answer, as net/http wrote it.
type refusal struct {
	status int    // net/http's status
	reason string // its text after the status line's reason phrase, if any
}

// parseRefusal recognises net/http's own answers: "HTTP/1.1 <code>
// <reason>[: <text>]" with exactly its text/plain headers and no Date, or
// its bodiless 417.
func parseRefusal(b []byte) (refusal, bool) {
	code, err := strconv.Atoi(string(b[9:12]))
	if err != nil || b[12] != ' ' {
		return refusal{}, false
	}
	if bytes.HasPrefix(b, expectationLine) {
		return refusal{status: http.StatusExpectationFailed}, true
	}
	end := bytes.Index(b, cannedHeaders)
	if end < 0 || bytes.Contains(b[:end], dateHeader) {
		return refusal{}, false
	}
	line := string(b[13:end]) // "Bad Request: missing required Host header"
	r := refusal{status: code}
	if _, text, found := strings.Cut(line, ": "); found {
		r.reason = text
	} else if code == http.StatusNotImplemented {
		r.reason = string(b[end+len(cannedHeaders):]) // "Unsupported transfer encoding"
	}
	return r, true
}

// problem is the problem the service sends instead of r.
func (r refusal) problem(maxHeaderBytes int) problem.Problem {
	switch r.status {
	case http.StatusRequestHeaderFieldsTooLarge:
		detail := "the request line and headers are over the server's limit"
		if maxHeaderBytes > 0 {
			detail = fmt.Sprintf("the request line and headers must be at most about %d bytes", maxHeaderBytes)
		}
		return problem.New(problem.TypeHeadersTooLarge, detail)
	case http.StatusExpectationFailed:
		return problem.New(problem.TypeExpectationFailed, "the only Expect the server accepts is 100-continue")
	case http.StatusHTTPVersionNotSupported:
		return problem.BadRequest("the HTTP version is not supported: send HTTP/1.1 or HTTP/1.0")
	case http.StatusNotImplemented:
		return problem.BadRequest("the Transfer-Encoding is not supported: send the body with Content-Length, or chunked")
	}
	if r.reason != "" {
		return problem.BadRequest("the request could not be read: " + r.reason)
	}
	return problem.BadRequest("the request could not be read: a malformed request line or header")
}

// refusalLog writes the answers and logs them, at most LogPerSecond a
// second.
type refusalLog struct {
	o          RefusalOptions
	mu         sync.Mutex
	second     int64 // the Unix second being counted
	logged     int   // lines logged in it
	suppressed int   // refusals not logged since the last line
}

// answer returns the whole response for r, and logs it.
func (l *refusalLog) answer(r refusal, remote net.Addr) []byte {
	p := r.problem(l.o.MaxHeaderBytes)
	now := time.Now()
	p.RequestID = newRequestID(now)
	// The target was not read (or not trusted): the occurrence is the
	// request ID, which the log line has too.
	p.Instance = "urn:uuid:" + p.RequestID
	body := p.JSON()
	l.record(r, p, remote)
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%s: %s\r\nDate: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		p.Status, http.StatusText(p.Status), problem.ContentType, requestIDKey, p.RequestID,
		now.UTC().Format(http.TimeFormat), len(body))
	b.Write(body)
	return b.Bytes()
}

func (l *refusalLog) record(r refusal, p problem.Problem, remote net.Addr) {
	now := time.Now().Unix()
	l.mu.Lock()
	if now != l.second {
		l.second, l.logged = now, 0
	}
	if l.logged >= l.o.LogPerSecond {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	l.logged++
	suppressed := l.suppressed
	l.suppressed = 0
	l.mu.Unlock()

	attrs := []any{"status", p.Status, "type", p.Type, "detail", p.Detail, "request_id", p.RequestID}
	if r.status != p.Status {
		attrs = append(attrs, "net_http_status", r.status)
	}
	if host, _, err := net.SplitHostPort(remote.String()); err == nil {
		attrs = append(attrs, "client_ip", host)
	}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	l.o.Logger.Info("request refused before routing", attrs...)
}

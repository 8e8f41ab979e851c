// Package loadgen sends HTTP/1.1 load to a server on loopback the way wrk
// does: each client keeps one connection alive and sends a request as soon
// as it has read the previous answer. Unlike net/http's client it never
// retries behind the caller's back, so a request the server cut (a
// connection closed under it, a reset) is counted as cut, which is what the
// restart tests and `make bench` need to see.
package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options describe the load.
type Options struct {
	Addr string // host:port
	// Request builds the request a client sends; i counts that client's
	// requests from 0. Its URL needs only a path; Host is set to Addr.
	Request func(client, i int) *http.Request
	// Clients is the number of concurrent connections.
	Clients int
	// Rate, when positive, paces the total load at Rate requests per second
	// (an open loop, for offering more than the server can do): latency is
	// then counted from when a request was due, not from when a client was
	// free to send it. Zero sends as fast as the clients are answered.
	Rate int
	// Timeout bounds one request, from write to the end of the answer.
	Timeout time.Duration
	// StopOnClose makes a client stop when an answer says Connection:
	// close, as a load balancer that took the instance out would. By
	// default it opens a new connection, as a browser would.
	StopOnClose bool
	// Predial opens every client's connection before the load starts, so
	// that the first requests do not wait behind a thousand handshakes in
	// the server's accept queue (which no server-side limit can see).
	Predial bool
}

// Result counts what happened.
type Result struct {
	Sent      int         // requests written on a connection
	Answered  int         // requests answered (any status)
	Status    map[int]int // answers by status code
	Cut       int         // requests sent whose connection failed before a whole answer
	DialFails int         // connections that could not be opened (nothing was sent)
	Closed    int         // answers that carried Connection: close
	Elapsed   time.Duration
	// Latencies of the answered requests, sorted; OKLatencies of the 2xx
	// ones only (what admitted requests cost when others were refused).
	// With Rate set they count from when each request was due, so a
	// generator that falls behind shows in them: Late says by how much.
	Latencies   []time.Duration
	OKLatencies []time.Duration
	// OKWire are the 2xx latencies from when each request was written, the
	// server's part alone; Late is, for every request sent, how long after
	// it was due it went out (zero without Rate). Both sorted.
	OKWire []time.Duration
	Late   []time.Duration
	// Errors are a few of the cut requests' errors, for the test's message.
	Errors []string
}

// OK is the number of 2xx answers.
func (r Result) OK() int {
	n := 0
	for code, c := range r.Status {
		if code >= 200 && code < 300 {
			n += c
		}
	}
	return n
}

// Failed is every request that did not get a 2xx: cut, refused at dial,
// or answered with another status. A restart that loses nothing has none.
func (r Result) Failed() int { return r.Cut + r.DialFails + r.Answered - r.OK() }

// PerSecond is answered requests per second.
func (r Result) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Answered) / r.Elapsed.Seconds()
}

// Percentile returns the p-th percentile latency (0 < p <= 100).
func (r Result) Percentile(p float64) time.Duration { return percentile(r.Latencies, p) }

// OKPercentile is Percentile over the 2xx answers only.
func (r Result) OKPercentile(p float64) time.Duration { return percentile(r.OKLatencies, p) }

// OKWirePercentile is OKPercentile counted from when each request was
// written rather than due.
func (r Result) OKWirePercentile(p float64) time.Duration { return percentile(r.OKWire, p) }

// LatePercentile is the p-th percentile of how late requests were sent.
func (r Result) LatePercentile(p float64) time.Duration { return percentile(r.Late, p) }

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Run sends load until ctx ends and returns what happened.
func Run(ctx context.Context, o Options) Result {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	conns := make([]net.Conn, o.Clients)
	if o.Predial {
		var dials sync.WaitGroup
		for c := range conns {
			dials.Go(func() {
				d := net.Dialer{Timeout: o.Timeout}
				conns[c], _ = d.DialContext(ctx, "tcp", o.Addr) // a failure dials again in client
			})
		}
		dials.Wait()
	}
	var due chan time.Time // paced mode: when each request was due
	if o.Rate > 0 {
		due = make(chan time.Time, o.Rate) // at most a second of backlog
		go pace(ctx, o.Rate, due)
	}
	start := time.Now()
	results := make([]Result, o.Clients)
	var wg sync.WaitGroup
	for c := range o.Clients {
		wg.Go(func() { results[c] = client(ctx, o, c, due, conns[c]) })
	}
	wg.Wait()
	total := Result{Status: map[int]int{}, Elapsed: time.Since(start)}
	for _, r := range results {
		total.Sent += r.Sent
		total.Answered += r.Answered
		total.Cut += r.Cut
		total.DialFails += r.DialFails
		total.Closed += r.Closed
		for code, n := range r.Status {
			total.Status[code] += n
		}
		total.Latencies = append(total.Latencies, r.Latencies...)
		total.OKLatencies = append(total.OKLatencies, r.OKLatencies...)
		total.OKWire = append(total.OKWire, r.OKWire...)
		total.Late = append(total.Late, r.Late...)
		if len(total.Errors) < 5 {
			total.Errors = append(total.Errors, r.Errors...)
		}
	}
	slices.Sort(total.Latencies)
	slices.Sort(total.OKLatencies)
	slices.Sort(total.OKWire)
	slices.Sort(total.Late)
	return total
}

func pace(ctx context.Context, rate int, due chan<- time.Time) {
	defer close(due)
	interval := time.Second / time.Duration(rate)
	next := time.Now()
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for ; !next.After(now); next = next.Add(interval) {
				select {
				case due <- next:
				default: // more than a second behind: the clients cannot keep up; drop
				}
			}
		}
	}
}

// client runs one connection's loop.
func client(ctx context.Context, o Options, id int, due <-chan time.Time, conn net.Conn) Result {
	res := Result{Status: map[int]int{}}
	var br *bufio.Reader
	if conn != nil {
		br = bufio.NewReader(conn)
	}
	defer func() {
		if conn != nil {
			_ = conn.Close()
		}
	}()
	// For the note of a cut request: which request on its connection it was
	// and how long after the previous answer it went out, to tell a
	// connection closed under a request from one never answered.
	onConn, lastAnswer := 0, time.Time{}
	for i := 0; ; i++ {
		begin := time.Now()
		if due != nil {
			var ok bool
			select {
			case <-ctx.Done():
				return res
			case begin, ok = <-due:
				if !ok {
					return res
				}
			}
		}
		if ctx.Err() != nil {
			return res
		}
		if conn == nil {
			d := net.Dialer{Timeout: o.Timeout}
			c, err := d.DialContext(ctx, "tcp", o.Addr)
			if err != nil {
				if ctx.Err() == nil {
					res.DialFails++
					res.note(err)
				}
				return res
			}
			conn, br = c, bufio.NewReader(c)
			onConn, lastAnswer = 0, time.Time{}
		}
		onConn++
		req := o.Request(id, i)
		req.Host = o.Addr
		res.Sent++
		written := time.Now()
		if due != nil {
			res.Late = append(res.Late, written.Sub(begin))
		}
		_ = conn.SetDeadline(time.Now().Add(o.Timeout))
		status, closing, err := roundTrip(conn, br, req)
		if err != nil {
			res.Cut++
			res.note(cutNote(err, onConn, conn.LocalAddr(), written, lastAnswer))
			_ = conn.Close()
			conn = nil
			continue
		}
		res.Answered++
		lastAnswer = time.Now()
		res.Status[status]++
		took := time.Since(begin)
		res.Latencies = append(res.Latencies, took)
		if status >= 200 && status < 300 {
			res.OKLatencies = append(res.OKLatencies, took)
			res.OKWire = append(res.OKWire, time.Since(written))
		}
		if closing {
			res.Closed++
			_ = conn.Close()
			conn = nil
			if o.StopOnClose {
				return res
			}
		}
	}
}

// cutNote says where a cut request was: its error, which request on its
// connection (1 is a new connection), the connection's local address and
// when it was written, with the time since the previous answer on it.
func cutNote(err error, n int, local net.Addr, written, lastAnswer time.Time) error {
	after := "first on a new connection"
	if !lastAnswer.IsZero() {
		after = fmt.Sprintf("%s after the previous answer", written.Sub(lastAnswer).Round(time.Microsecond))
	}
	return fmt.Errorf("%w (request %d on the connection from %s, written %s, %s)",
		err, n, local, written.UTC().Format("15:04:05.000000"), after)
}

// roundTrip writes req and reads the whole answer.
func roundTrip(conn net.Conn, br *bufio.Reader, req *http.Request) (status int, closing bool, err error) {
	if err := req.Write(conn); err != nil {
		return 0, false, err
	}
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return 0, false, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return 0, false, err
	}
	return resp.StatusCode, resp.Close || strings.EqualFold(resp.Header.Get("Connection"), "close"), nil
}

func (r *Result) note(err error) {
	if len(r.Errors) < 5 {
		r.Errors = append(r.Errors, err.Error())
	}
}

// Get returns a Request function for GET path.
func Get(path string) func(int, int) *http.Request {
	return func(int, int) *http.Request {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, path, nil)
		return req
	}
}

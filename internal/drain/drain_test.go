package drain

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// server is an http.Server with a Drainer on a real socket, stopped as the
// service stops: Start, close the listener, Wait, Shutdown.
type server struct {
	d   *Drainer
	srv *http.Server
	ln  net.Listener
}

func serve(t *testing.T, network, addr string) *server {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	d := &Drainer{}
	srv := &http.Server{
		Handler:           d.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })),
		ConnState:         d.ConnState,
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &server{d: d, srv: srv, ln: ln}
}

// stop drains as cmd/api does and reports how long Wait took and how many
// connections were open when it returned. Wait's own limit is 10 s here.
func (s *server) stop(quiet time.Duration) (waited time.Duration, open int) {
	return s.stopWithin(quiet, 10*time.Second)
}

func (s *server) stopWithin(quiet, limit time.Duration) (waited time.Duration, open int) {
	begin := time.Now()
	s.d.Start()
	_ = s.ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s.d.Wait(ctx, quiet, limit)
	waited, open = time.Since(begin), s.d.Open()
	go func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.srv.Shutdown(sctx)
	}()
	return waited, open
}

// client is one keep-alive connection, written to by hand as a load
// generator or a proxy's pool does.
type client struct {
	conn net.Conn
	br   *bufio.Reader
}

func dial(t *testing.T, network, addr string) *client {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &client{conn: c, br: bufio.NewReader(c)}
}

// get sends one request and reads its answer; err is what a cut request
// gives (EOF, reset).
func (c *client) get() (resp *http.Response, err error) {
	_ = c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	req, _ := http.NewRequest(http.MethodGet, "http://drain/", nil)
	if err := req.Write(c.conn); err != nil {
		return nil, err
	}
	resp, err = http.ReadResponse(c.br, req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	buf := make([]byte, 16)
	_, _ = resp.Body.Read(buf)
	return resp, nil
}

func (c *client) mustGet(t *testing.T) *http.Response {
	t.Helper()
	resp, err := c.get()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %v %v", resp, err)
	}
	return resp
}

// TestWait_ClientAboutToSendIsAnsweredNotCut is the race a stop used to
// lose a request to: a client got a keep-alive answer just before the
// drain began (so it was not told to close) and sends its next request a
// moment later. Waiting for its connection to go quiet, the server answers
// that request, saying close; without the wait (quiet 0, what
// http.Server.Shutdown alone does) the same client is cut.
func TestWait_ClientAboutToSendIsAnsweredNotCut(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		quiet   time.Duration
		wantCut bool
	}{
		{"waits for the connection to go quiet", 2 * time.Second, false},
		{"closing idle connections at once cuts it", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := serve(t, "tcp", "127.0.0.1:0")
			c := dial(t, "tcp", s.ln.Addr().String())
			if resp := c.mustGet(t); resp.Close {
				t.Fatal("the answer before the drain said close")
			}
			done := make(chan struct{})
			var waited time.Duration
			var open int
			go func() { waited, open = s.stop(tc.quiet); close(done) }()
			time.Sleep(300 * time.Millisecond) // the client's think time
			if tc.wantCut {
				// Shutdown closes the idle connection at once; the client
				// sends after that.
				<-done
				for deadline := time.Now().Add(5 * time.Second); s.d.Open() > 0 && time.Now().Before(deadline); {
					time.Sleep(5 * time.Millisecond)
				}
				if resp, err := c.get(); err == nil {
					t.Fatalf("answered %d: the control case should be cut", resp.StatusCode)
				}
				return
			}
			resp, err := c.get()
			<-done
			if err != nil {
				t.Fatalf("the request sent 300 ms into the drain was cut: %v", err)
			}
			if resp.StatusCode != http.StatusOK || !resp.Close {
				t.Errorf("answer %d, close %v: want 200 saying Connection: close", resp.StatusCode, resp.Close)
			}
			if open != 0 || waited >= tc.quiet {
				t.Errorf("Wait returned after %s with %d connections open, want 0 before %s (the client closed after its answer)", waited, open, tc.quiet)
			}
		})
	}
}

// TestWait_IdleConnectionsDoNotHoldTheStop: a connection idle in a pool
// since well before the drain does not make Wait wait; one on which the
// kernel cannot say when data last moved (a Unix socket) counts from the
// drain's start.
func TestWait_IdleConnectionsDoNotHoldTheStop(t *testing.T) {
	t.Parallel()
	const quiet = 600 * time.Millisecond
	for _, tc := range []struct {
		name    string
		network string
		// wait is whether Wait waits out quiet from the drain's start.
		wait bool
	}{
		{"TCP connection idle for longer than quiet", "tcp", false},
		{"Unix socket: counted as used at the start", "unix", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.network == "tcp" && runtime.GOOS != "linux" {
				t.Skip("TCP_INFO is Linux's")
			}
			addr := "127.0.0.1:0"
			if tc.network == "unix" {
				addr = filepath.Join(t.TempDir(), "s")
			}
			s := serve(t, tc.network, addr)
			c := dial(t, tc.network, s.ln.Addr().String())
			c.mustGet(t)
			time.Sleep(quiet + 300*time.Millisecond) // idle in the pool
			waited, open := s.stop(quiet)
			if open != 1 {
				t.Fatalf("%d connections open when Wait returned, want the idle one", open)
			}
			if tc.wait && waited < quiet {
				t.Errorf("Wait returned after %s, want at least %s", waited, quiet)
			}
			if !tc.wait && waited >= quiet {
				t.Errorf("Wait took %s for a connection idle since before the drain, want less than %s", waited, quiet)
			}
		})
	}
}

// TestWait_ReturnsWhenEveryConnectionHasClosed: clients that keep sending
// are told to close, and Wait returns as soon as they have.
func TestWait_ReturnsWhenEveryConnectionHasClosed(t *testing.T) {
	t.Parallel()
	s := serve(t, "tcp", "127.0.0.1:0")
	c := dial(t, "tcp", s.ln.Addr().String())
	c.mustGet(t)
	s.d.Start()
	if resp := c.mustGet(t); !resp.Close {
		t.Fatal("an answer while draining did not say Connection: close")
	}
	_ = c.conn.Close()
	waited, open := s.stop(time.Minute)
	if open != 0 || waited >= time.Second {
		t.Errorf("Wait took %s with %d open, want an immediate return with none", waited, open)
	}
}

// TestWait_LimitBoundsTheWait: a connection in use when the drain begins
// (here one answered a moment ago, as one carrying a stream would be) holds
// Wait no longer than its limit, so Shutdown keeps its time for the
// requests in flight.
func TestWait_LimitBoundsTheWait(t *testing.T) {
	t.Parallel()
	s := serve(t, "tcp", "127.0.0.1:0")
	c := dial(t, "tcp", s.ln.Addr().String())
	c.mustGet(t)
	waited, open := s.stopWithin(time.Minute, 300*time.Millisecond)
	if open != 1 || waited < 300*time.Millisecond || waited >= 5*time.Second {
		t.Errorf("Wait returned after %s with %d open, want the limit (300 ms) with the connection still open", waited, open)
	}
}

package server_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/prodready/service/internal/server"
	"github.com/prodready/service/internal/shed"
)

// TestSendStall_AClientThatReadsNothingFreesItsSlot: over real sockets,
// with one shedding slot, a client asks for a large answer and reads
// nothing (a receive buffer of 1 KiB, as a slow-read attack sets it). Its
// handler gives up once the client has taken nothing for
// SendStallTimeout, so the next client is served, where it used to get
// 503 while the first held the slot until http.write_timeout. A client
// that reads slowly but steadily gets the whole answer.
func TestSendStall_AClientThatReadsNothingFreesItsSlot(t *testing.T) {
	for _, tt := range []struct {
		name    string
		observe []gin.HandlerFunc
	}{
		{"gin's writer", nil},
		// As the New Relic agent's middleware does: a writer of its own that
		// cannot set deadlines (no Unwrap), so the connection's is used.
		{"a writer wrapped by APM middleware", []gin.HandlerFunc{func(c *gin.Context) {
			c.Writer = opaqueWriter{c.Writer}
			c.Next()
		}}},
	} {
		t.Run(tt.name, func(t *testing.T) { sendStallScenario(t, tt.observe) })
	}
}

// opaqueWriter hides what the writer under it can do but write.
type opaqueWriter struct{ gin.ResponseWriter }

func sendStallScenario(t *testing.T, observe []gin.HandlerFunc) {
	big := bytes.Repeat([]byte("x"), 16<<20) // more than any socket buffer on loopback
	s := shed.New(shed.Options{MaxInFlight: 1, QueueSize: 4, QueueTimeout: 10 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	e := server.New(server.Options{Logger: slog.New(slog.DiscardHandler), SendStallTimeout: 2 * time.Second, WriteTimeout: 30 * time.Second,
		Observe: observe, Admit: []gin.HandlerFunc{s.Middleware()},
		Routes: []func(gin.IRouter){func(r gin.IRouter) {
			r.GET("/big", func(c *gin.Context) { c.Data(http.StatusOK, "application/octet-stream", big) })
			r.GET("/small", func(c *gin.Context) { c.String(http.StatusOK, "small") })
		}}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: e, WriteTimeout: 30 * time.Second, ReadHeaderTimeout: 5 * time.Second, ConnContext: server.ConnContext}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	addr := ln.Addr().String()

	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024) })
	}}
	stalled, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	fmt.Fprint(stalled, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n") // and never read
	time.Sleep(100 * time.Millisecond)                          // its handler holds the slot

	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + addr + "/small")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a request while another client reads nothing: %d %s, want 200 once the stalled answer is cut", resp.StatusCode, body)
	}

	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprint(slow, "GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	// It counts what it reads and keeps only the status line: collecting
	// 16 MiB in a growing buffer made it pause for each copy (long, under
	// the race detector), its receive window closed meanwhile, and the
	// kernel's zero-window probes, backing off, left the server unable to
	// send for longer than the stall: that client was not steady.
	var head []byte
	total := 0
	buf := make([]byte, 256<<10)
	for {
		_ = slow.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := slow.Read(buf)
		if len(head) < 64 {
			head = append(head, buf[:min(n, 64)]...)
		}
		total += n
		if err != nil {
			break
		}
		time.Sleep(time.Millisecond) // slow, steady
	}
	if !strings.HasPrefix(string(head), "HTTP/1.1 200") || total < len(big) {
		t.Errorf("a client reading steadily got %d bytes (%q...), want the whole %d-byte answer", total, head, len(big))
	}
}

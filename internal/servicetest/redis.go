package servicetest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// RedisServer is a redis-server of the test's own, on a free loopback port,
// for faults that must not touch the shared Redis: Freeze (SIGSTOP: the
// kernel still accepts connections, nobody answers), Kill and Start again.
type RedisServer struct {
	t    testing.TB
	port int
	dir  string
	cmd  *exec.Cmd
}

// StartRedis starts a redis-server for this test and stops it when the test
// ends. It skips (or fails under REQUIRE_SERVICES=1) without redis-server.
func StartRedis(t testing.TB) *RedisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		Missing(t, "redis-server", "not on PATH (apt-get install redis-server)")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	s := &RedisServer{t: t, port: port, dir: t.TempDir()}
	s.Start()
	t.Cleanup(func() {
		if s.cmd != nil {
			_ = s.cmd.Process.Signal(syscall.SIGCONT) // a frozen process cannot act on SIGKILL's wait
			_ = s.cmd.Process.Kill()
			_ = s.cmd.Wait()
		}
	})
	return s
}

// Addr is host:port; URL a redis:// URL for database 0.
func (s *RedisServer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL is a redis:// URL of database 0 on this server.
func (s *RedisServer) URL() string { return "redis://" + s.Addr() + "/0" }

// Start (re)starts the server on its port and waits until it accepts connections.
func (s *RedisServer) Start() {
	s.t.Helper()
	ctx := context.WithoutCancel(s.t.Context())
	cmd := exec.CommandContext(ctx, "redis-server", "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", //nolint:gosec // G204: a fixed program; the arguments are the test's own port and directory
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--logfile", "")
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", s.Addr())
		if err == nil {
			_, _ = fmt.Fprint(c, "PING\r\n")
			buf := make([]byte, 7)
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			n, _ := c.Read(buf)
			_ = c.Close()
			if string(buf[:n]) == "+PONG\r\n" {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("redis-server on port %d did not answer PING within 10s", s.port)
}

// Freeze stops the process (SIGSTOP): connections are still accepted by the
// kernel, but no command is ever answered, as with a hung server.
func (s *RedisServer) Freeze() { s.signal(syscall.SIGSTOP) }

// Thaw resumes a frozen server (SIGCONT).
func (s *RedisServer) Thaw() { s.signal(syscall.SIGCONT) }

// Kill ends the process (SIGKILL): its port then refuses connections.
func (s *RedisServer) Kill() {
	s.t.Helper()
	s.signal(syscall.SIGKILL)
	_ = s.cmd.Wait()
	s.cmd = nil
}

func (s *RedisServer) signal(sig syscall.Signal) {
	s.t.Helper()
	if s.cmd == nil {
		s.t.Fatal("redis-server is not running")
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal redis-server: %v", err)
	}
}

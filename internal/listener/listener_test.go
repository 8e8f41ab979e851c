package listener_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prodready/service/internal/listener"
	"github.com/prodready/service/internal/servicetest"
)

// TestMain lets this test binary play a socket-activated service: started by
// systemd-socket-activate with LISTENER_TEST_CHILD set, it takes the socket
// with FromSystemd and answers one connection with where it got it.
func TestMain(m *testing.M) {
	if os.Getenv("LISTENER_TEST_CHILD") == "1" {
		ln, ok, err := listener.FromSystemd(os.Getenv)
		if err != nil || !ok {
			fmt.Fprintf(os.Stderr, "no socket from systemd: ok=%v err=%v\n", ok, err)
			os.Exit(3)
		}
		c, err := ln.Accept()
		if err == nil {
			fmt.Fprintf(c, "pid %d serves %s\n", os.Getpid(), ln.Addr())
			_ = c.Close()
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestFromSystemd_ServesTheSocketSystemdPassed(t *testing.T) {
	tool, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		servicetest.Missing(t, "systemd-socket-activate", "not installed (Debian package systemd)")
	}
	addr := freeAddr(t)
	cmd := exec.Command(tool, "-l", addr, "-E", "LISTENER_TEST_CHILD=1", os.Args[0])
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	// systemd-socket-activate starts the service on the first connection.
	var c net.Conn
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err = net.Dial("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("dial the activated socket: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if want := fmt.Sprintf("pid %d serves %s", cmd.Process.Pid, addr); strings.TrimSpace(line) != want {
		t.Errorf("got %q, want %q", line, want)
	}
}

func TestFromSystemd_Variables(t *testing.T) {
	me := strconv.Itoa(os.Getpid())
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"nothing passed", map[string]string{}, ""},
		{"passed to another process (our parent)", map[string]string{"LISTEN_PID": "1", "LISTEN_FDS": "1"}, ""},
		{"zero sockets", map[string]string{"LISTEN_PID": me, "LISTEN_FDS": "0"}, ""},
		{"two sockets", map[string]string{"LISTEN_PID": me, "LISTEN_FDS": "2"}, "LISTEN_FDS=2, want one socket"},
		{"not a number", map[string]string{"LISTEN_PID": me, "LISTEN_FDS": "x"}, `LISTEN_FDS="x" is not a count`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, ok, err := listener.FromSystemd(func(k string) string { return tt.env[k] })
			if ok || ln != nil {
				t.Fatalf("took a socket from %v", tt.env)
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestListen_SecondBindFailsWithoutReusePort(t *testing.T) {
	a := listen(t, "127.0.0.1:0", false)
	_, _, err := listener.Listen(context.Background(), listener.Options{Addr: a.Addr().String(), Getenv: noEnv})
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("second bind: %v, want address in use", err)
	}
}

// With reuse_port, a replacement binds beside the old listener; when the old
// one closes, the connections waiting in its queue move to the replacement
// (net.ipv4.tcp_migrate_req) instead of being reset.
func TestListen_ReusePortReplacementTakesOverQueuedConnections(t *testing.T) {
	if !listener.QueuedConnectionsMigrate() {
		servicetest.Missing(t, "net.ipv4.tcp_migrate_req", "is 0: run sysctl -w net.ipv4.tcp_migrate_req=1 (.ci/run does)")
	}
	old := listen(t, "127.0.0.1:0", true)
	addr := old.Addr().String()
	repl := listen(t, addr, true)
	var conns []net.Conn
	for range 50 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	// The kernel spread the 50 over both queues; the old socket closes
	// without accepting any.
	_ = old.Close()
	if got := accept(t, repl, 50); got != 50 {
		t.Fatalf("the replacement accepted %d of 50 connections, want all (the rest were reset)", got)
	}
}

func TestFile_AChildCanServeTheSameSocket(t *testing.T) {
	ln := listen(t, "127.0.0.1:0", false)
	f, err := listener.File(ln)
	if err != nil {
		t.Fatal(err)
	}
	// As a child inherits it: a descriptor of its own.
	fd, err := syscall.Dup(int(f.Fd()))
	_ = f.Close()
	if err != nil {
		t.Fatal(err)
	}
	dup, err := listener.FromFile(uintptr(fd), "copy")
	if err != nil {
		t.Fatal(err)
	}
	defer dup.Close()
	for range 4 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	if got := accept(t, dup, 4); got != 4 {
		t.Errorf("the copy accepted %d of 4", got)
	}
}

func noEnv(string) string { return "" }

func listen(t *testing.T, addr string, reuse bool) net.Listener {
	t.Helper()
	ln, src, err := listener.Listen(context.Background(), listener.Options{Addr: addr, ReusePort: reuse, Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[bool]listener.Source{false: listener.Bound, true: listener.ReusePort}[reuse]; src != want {
		t.Errorf("source %q, want %q", src, want)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// accept accepts up to n connections on ln, waiting at most five seconds.
func accept(t *testing.T, ln net.Listener, n int) int {
	t.Helper()
	got := 0
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	for got < n {
		c, err := ln.Accept()
		if err != nil {
			break
		}
		got++
		_ = c.Close()
	}
	return got
}

// TestInheritedSockets_MisconfigurationsAreNamed: what an operator reads
// when the descriptor handed over is not a listening socket (a .socket unit
// or a wrapper passing the wrong file), and when the listener to share with
// workers is not TCP.
func TestInheritedSockets_MisconfigurationsAreNamed(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "not-a-socket")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := listener.FromFile(f.Fd(), "file"); err == nil ||
		!strings.Contains(err.Error(), fmt.Sprintf("descriptor %d is not a listening socket", f.Fd())) {
		t.Errorf("a regular file: %v, want it named as not a listening socket", err)
	}
	if _, err := listener.FromFile(^uintptr(0), "none"); err == nil || !strings.Contains(err.Error(), "is not open") {
		t.Errorf("no descriptor: %v, want it named as not open", err)
	}
	ul, err := net.Listen("unix", t.TempDir()+"/s")
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	if _, err := listener.File(ul); err == nil || !strings.Contains(err.Error(), "cannot be shared with workers") {
		t.Errorf("a Unix listener: %v, want it refused for workers", err)
	}
}

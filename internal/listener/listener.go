// Package listener provides the service's listening socket, from wherever
// it comes: inherited from systemd socket activation (LISTEN_FDS), inherited
// from a master process that runs workers, or bound here, optionally with
// SO_REUSEPORT so a replacement process can bind while the old one drains.
//
// An inherited socket outlives the process that serves it: connections that
// arrive while one process stops and the next starts wait in its accept
// queue instead of being refused. That is what makes restarts lose nothing.
package listener

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Source says where a listener came from; it is logged at start.
type Source string

// The sources of a listener.
const (
	Bound     Source = "bound"     // bound by this process
	ReusePort Source = "reuseport" // bound by this process with SO_REUSEPORT
	Systemd   Source = "systemd"   // inherited through LISTEN_FDS
)

// listenFDsStart is the first inherited descriptor, by the sd_listen_fds(3)
// convention: 0, 1 and 2 are the standard streams.
const listenFDsStart = 3

// Options say how to get the socket.
type Options struct {
	Addr string // host:port to bind when nothing is inherited
	// ReusePort sets SO_REUSEPORT, so that a new process can bind the same
	// address while this one drains (see QueuedConnectionsMigrate).
	ReusePort bool
	// Getenv reads LISTEN_PID and LISTEN_FDS; nil means os.Getenv.
	Getenv func(string) string
}

// Listen returns the systemd-activated socket when LISTEN_FDS names one for
// this process, else a socket bound to o.Addr.
func Listen(ctx context.Context, o Options) (net.Listener, Source, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	ln, ok, err := FromSystemd(getenv)
	if err != nil || ok {
		return ln, Systemd, err
	}
	lc := net.ListenConfig{}
	src := Bound
	if o.ReusePort {
		src = ReusePort
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	ln, err = lc.Listen(ctx, "tcp", o.Addr)
	if err != nil {
		return nil, src, fmt.Errorf("listen: %w", err)
	}
	return ln, src, nil
}

// migrateReqPath is the kernel setting (Linux 5.14+) that moves the
// connections queued on a closing SO_REUSEPORT socket to another socket of
// its group instead of resetting them.
const migrateReqPath = "/proc/sys/net/ipv4/tcp_migrate_req"

// QueuedConnectionsMigrate reports whether net.ipv4.tcp_migrate_req is on.
// Without it, a reuse-port hand-over resets the connections that arrived in
// the old socket's queue in the moment before it closed: each process has a
// queue of its own, and the kernel spreads new connections over all of them.
func QueuedConnectionsMigrate() bool {
	b, err := os.ReadFile(migrateReqPath)
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

// FromSystemd returns the socket systemd passed to this process, if any,
// following sd_listen_fds(3): LISTEN_PID must be this process (the
// variables are inherited by children, which must not take the socket) and
// LISTEN_FDS the number of descriptors from fd 3. The service serves one
// socket, so more than one is a configuration error.
func FromSystemd(getenv func(string) string) (net.Listener, bool, error) {
	pid, fds := getenv("LISTEN_PID"), getenv("LISTEN_FDS")
	if fds == "" || pid != strconv.Itoa(os.Getpid()) {
		return nil, false, nil
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 0 {
		return nil, false, fmt.Errorf("socket activation: LISTEN_FDS=%q is not a count", fds)
	}
	switch n {
	case 0:
		return nil, false, nil
	case 1:
	default:
		return nil, false, fmt.Errorf("socket activation: LISTEN_FDS=%d, want one socket (one ListenStream= in the .socket unit)", n)
	}
	// Not inherited further: a child started later must not share it unawares.
	syscall.CloseOnExec(listenFDsStart)
	ln, err := FromFile(listenFDsStart, "systemd")
	if err != nil {
		return nil, false, fmt.Errorf("socket activation: %w", err)
	}
	return ln, true, nil
}

// FromFile turns the inherited listening socket at descriptor fd into a
// net.Listener. The descriptor itself is closed: the listener holds a copy.
func FromFile(fd uintptr, name string) (net.Listener, error) {
	f := os.NewFile(fd, name)
	if f == nil {
		return nil, fmt.Errorf("descriptor %d is not open", fd)
	}
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("descriptor %d is not a listening socket: %w", fd, err)
	}
	return ln, nil
}

// File returns a descriptor of ln's socket for a child process to inherit
// (exec.Cmd.ExtraFiles). The caller closes it when no more children will be
// started; ln keeps working either way.
//
// It is not TCPListener.File: that file's Fd method, which os/exec calls
// for every child, switches the socket to blocking mode, and the mode
// belongs to the socket, shared by every process holding it. A worker
// blocked in accept(2) on a blocking socket can no longer be woken to stop.
func File(ln net.Listener) (*os.File, error) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil, fmt.Errorf("listener %T cannot be shared with workers", ln)
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return nil, err
	}
	dup := -1
	var derr error
	if err := rc.Control(func(fd uintptr) { dup, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, fmt.Errorf("duplicate the listening socket: %w", derr)
	}
	return os.NewFile(uintptr(dup), "listener"), nil
}

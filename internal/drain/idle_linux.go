package drain

import (
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// idleFor asks the kernel how long ago data last went over c, either way
// (TCP_INFO's tcpi_last_data_sent and tcpi_last_data_recv, in
// milliseconds): since its last answer, or since a request arrived that is
// still being served.
//
// A Multipath TCP connection is not asked: the kernel answers for its first
// subflow only, and data may be moving on another.
func idleFor(c net.Conn) (time.Duration, bool) {
	if tc, ok := c.(*net.TCPConn); ok {
		if mp, err := tc.MultipathTCP(); err != nil || mp {
			return 0, false
		}
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var info *unix.TCPInfo
	if cerr := rc.Control(func(fd uintptr) {
		info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); cerr != nil || err != nil {
		return 0, false
	}
	return time.Duration(min(info.Last_data_sent, info.Last_data_recv)) * time.Millisecond, true
}

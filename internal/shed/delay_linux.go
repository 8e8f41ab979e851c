package shed

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// unreadFor asks the kernel how long ago the connection last received data
// (tcpi_last_data_recv, in milliseconds): read as a request reaches the
// middleware, how long it waited before the service read it.
func unreadFor(rc syscall.RawConn) (time.Duration, bool) {
	var info *unix.TCPInfo
	var err error
	if cerr := rc.Control(func(fd uintptr) {
		info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); cerr != nil || err != nil {
		return 0, false
	}
	return time.Duration(info.Last_data_recv) * time.Millisecond, true
}

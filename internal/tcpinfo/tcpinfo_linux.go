package tcpinfo

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// LastData returns how long ago the connection last sent and last received
// data (tcpi_last_data_sent and tcpi_last_data_recv, in milliseconds). ok is
// false when the kernel does not answer (the connection is closing, or is
// not TCP).
func LastData(rc syscall.RawConn) (sent, recv time.Duration, ok bool) {
	var info *unix.TCPInfo
	var err error
	if cerr := rc.Control(func(fd uintptr) {
		info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); cerr != nil || err != nil {
		return 0, 0, false
	}
	return time.Duration(info.Last_data_sent) * time.Millisecond, time.Duration(info.Last_data_recv) * time.Millisecond, true
}

//go:build !linux

package tcpinfo

import (
	"syscall"
	"time"
)

// LastData is Linux's TCP_INFO; elsewhere the kernel is not asked and ok is
// false: requests are not measured (http.max_read_delay sheds nothing) and
// the drain counts every connection as used when it began.
func LastData(syscall.RawConn) (sent, recv time.Duration, ok bool) { return 0, 0, false }

//go:build !linux

package shed

import (
	"syscall"
	"time"
)

// unreadFor is Linux's TCP_INFO; elsewhere requests are not measured and
// http.max_read_delay sheds nothing.
func unreadFor(syscall.RawConn) (time.Duration, bool) { return 0, false }

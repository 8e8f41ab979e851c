//go:build !linux

package drain

import (
	"net"
	"time"
)

// idleFor is Linux's TCP_INFO; elsewhere Wait counts every connection as
// used when the drain began.
func idleFor(net.Conn) (time.Duration, bool) { return 0, false }

package admin

import (
	"net"
	"syscall"
)

// hasUnread reports whether bytes have arrived on c that nobody has read
// yet, without reading them or waiting (MSG_PEEK|MSG_DONTWAIT through
// Control, which does not contend with a reader blocked on c).
func hasUnread(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	n := 0
	_ = rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, _ = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	})
	return n > 0
}

//go:build !linux

package admin

import "net"

// hasUnread reports false: peeking at a socket is implemented on Linux
// only; elsewhere only what the server has read counts as sent.
func hasUnread(net.Conn) bool { return false }

package testkit

import (
	"net"
	"strings"
	"testing"
)

// ListenUDPTCP listens on addr over TCP and UDP on the same port, as a DNS
// server does. With port 0 it picks a port free for both (retrying when the
// UDP side of a free TCP port is taken); with a fixed port it tries once.
func ListenUDPTCP(t testing.TB, addr string) (net.Listener, net.PacketConn) {
	t.Helper()
	var lastErr error
	for range 20 {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("listen tcp %s: %v", addr, err)
		}
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		if err == nil {
			return ln, pc
		}
		ln.Close()
		lastErr = err
		if !strings.HasSuffix(addr, ":0") {
			break
		}
	}
	t.Fatalf("no port free for both UDP and TCP at %s: %v", addr, lastErr)
	return nil, nil
}

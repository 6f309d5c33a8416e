package dcerpc

import (
	"net"
	"testing"
	"time"
)

// stateConns counts the server's connections in state st.
func stateConns(s *Server, st int32) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := s.oldest; c != nil; c = c.next {
		if c.state.Load() == st {
			n++
		}
	}
	return n
}

// dialFrom dials addr from the loopback source address src.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	nc, err := d.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	return nc
}

// stall sends a complete PDU header announcing a bind and nothing more.
func stall(t *testing.T, nc net.Conn) {
	t.Helper()
	if _, err := nc.Write(bindPDU(1, PTypeBind, ndr32Item(0))[:HeaderLen]); err != nil {
		t.Fatal(err)
	}
}

// A connection stalled after a PDU header is evicted at the cap like an
// idle one; before the fix it held its slot until the first-PDU deadline
// and the cap refused every new client.
func TestConnectionCapEvictsStalledPDU(t *testing.T) {
	ev := &events{}
	s, addr := startServer(t, "tcp4", &echoHandler{}, ServerConfig{Limits: Limits{MaxConns: 2}, Observe: ev.observe})
	a, b := dialRaw(t, addr), dialRaw(t, addr)
	stall(t, a)
	stall(t, b)
	waitFor(t, "two connections stalled in a PDU body", func() bool { return stateConns(s, stateBody) == 2 })

	c := boundConn(t, addr) // admitted: evicts a, the oldest
	expectClosed(t, a)
	if got := ev.count(EventConnEvicted); got != 1 {
		t.Errorf("evicted events %d, want 1", got)
	}
	if _, err := c.Write(requestPDU(2, 0, 0, AppendRequestStub(nil, NDR32, []byte("x")))); err != nil {
		t.Fatal(err)
	}
	if _, _, err := parseResponse(readPDU(t, c)); err != nil {
		t.Fatalf("the admitted client got no answer: %v", err)
	}
	if s.Conns() != 2 {
		t.Errorf("Conns() = %d, want 2", s.Conns())
	}
}

// The rest of a PDU has its own short deadline, not the idle one.
func TestBodyTimeout(t *testing.T) {
	ev := &events{}
	_, addr := startServer(t, "tcp4", &echoHandler{}, ServerConfig{Limits: Limits{IdleTimeout: time.Minute, BodyTimeout: 200 * time.Millisecond}, Observe: ev.observe})
	c := boundConn(t, addr) // the first PDU is done: the idle deadline applies between PDUs
	stall(t, c)
	start := time.Now()
	expectClosed(t, c)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("stalled PDU closed after %v, want about the 200ms body timeout", took)
	}
	waitFor(t, "a timeout event", func() bool { return ev.count(EventTimeout) == 1 })
}

// One address cannot hold more than MaxConnsPerAddr connections: a new one
// from it evicts its oldest waiting connection, or is refused when all of
// them are in a request; other addresses are admitted throughout.
func TestPerAddressCap(t *testing.T) {
	ev := &events{}
	h := newBlockingHandler()
	s, addr := startServer(t, "tcp4", h, ServerConfig{Limits: Limits{MaxConnsPerAddr: 2}, Observe: ev.observe})
	defer close(h.release)

	a1, a2 := dialFrom(t, "127.0.0.2", addr), dialFrom(t, "127.0.0.2", addr)
	stall(t, a1)
	stall(t, a2)
	waitFor(t, "two stalled connections", func() bool { return stateConns(s, stateBody) == 2 })
	a3 := dialFrom(t, "127.0.0.2", addr) // evicts a1
	expectClosed(t, a1)
	if got := ev.count(EventAddrEvicted); got != 1 {
		t.Errorf("per-address evictions %d, want 1", got)
	}

	// Another address is not limited by 127.0.0.2's connections.
	other := boundConn(t, addr)
	other.Write(requestPDU(2, 0, 0, AppendRequestStub(nil, NDR32, []byte("o"))))
	<-h.entered

	// With both of 127.0.0.2's connections in a request, a third is refused.
	for i, c := range []net.Conn{a2, a3} {
		if i == 0 {
			c.Write(bindPDU(1, PTypeBind, ndr32Item(0))[HeaderLen:]) // completes the stalled bind
		} else {
			c.Write(bindPDU(1, PTypeBind, ndr32Item(0)))
		}
		readPDU(t, c)
		c.Write(requestPDU(2, 0, 0, AppendRequestStub(nil, NDR32, []byte("a"))))
		<-h.entered
	}
	a4 := dialFrom(t, "127.0.0.2", addr)
	expectClosed(t, a4)
	waitFor(t, "a per-address refusal", func() bool { return ev.count(EventAddrRefused) == 1 })
	if got := ev.count(EventConnEvicted) + ev.count(EventConnRefused); got != 0 {
		t.Errorf("global cap events %d, want 0", got)
	}
	if s.Conns() != 3 {
		t.Errorf("Conns() = %d, want 3", s.Conns())
	}
}

// Eviction spares a client that is exchanging PDUs: connections that never
// completed a PDU go first, even when they are newer.
func TestEvictionPrefersConnectionsWithoutAPDU(t *testing.T) {
	ev := &events{}
	s, addr := startServer(t, "tcp4", &echoHandler{}, ServerConfig{Limits: Limits{MaxConns: 2}, Observe: ev.observe})
	client := boundConn(t, addr) // oldest, idle after its bind
	stalled := dialRaw(t, addr)
	stall(t, stalled)
	waitFor(t, "one idle, one stalled", func() bool { return stateConns(s, stateIdle) == 1 && stateConns(s, stateBody) == 1 })

	dialRaw(t, addr) // evicts the stalled connection, not the older client
	expectClosed(t, stalled)
	if _, err := client.Write(requestPDU(2, 0, 0, AppendRequestStub(nil, NDR32, []byte("x")))); err != nil {
		t.Fatal(err)
	}
	if _, _, err := parseResponse(readPDU(t, client)); err != nil {
		t.Fatalf("the client was evicted: %v", err)
	}
}

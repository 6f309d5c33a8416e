package dcerpc

import (
	"bytes"
	"testing"
)

// TestReview3ReusedGoroutineCarriesNothing: connections served one after
// another reuse one goroutine and its read buffer. What a connection left
// behind (a bound context, part of a PDU it sent with a full one, a large
// request's bytes) must not reach the next: a request without a bind is
// refused, a short request is answered with its own payload only, and a
// PDU the next peer cuts short is a PDU error, never answered from the
// previous peer's bytes.
func TestReview3ReusedGoroutineCarriesNothing(t *testing.T) {
	const maxPDU = 1024
	ev := &events{}
	s, addr := startServer(t, "tcp4", &echoHandler{}, ServerConfig{MaxPDUSize: maxPDU, Observe: ev.observe})
	big, payBig := requestOfLen(t, 7, maxPDU)
	small, paySmall := requestOfLen(t, 8, 60)
	for round := range 20 {
		// A: bound, answered a full-size request, and left the first
		// part of another one buffered when it went away.
		a := boundConn(t, addr)
		if _, err := a.Write(append(bytes.Clone(big), big[:maxPDU/2]...)); err != nil {
			t.Fatal(err)
		}
		expectEcho(t, a, 7, payBig)
		a.Close()
		waitFor(t, "A closed", func() bool { return s.Conns() == 0 })

		// B: a request with no bind must be refused (fault), not served
		// under A's context.
		b := dialRaw(t, addr)
		if _, err := b.Write(small); err != nil {
			t.Fatal(err)
		}
		h, err := ParseHeader(readPDU(t, b))
		if err != nil || h.Type != ptypeFault {
			t.Fatalf("round %d: unbound request on a reused goroutine answered %+v, %v; want a fault", round, h, err)
		}
		b.Close()
		waitFor(t, "B closed", func() bool { return s.Conns() == 0 })

		// C: bound, sends a short request: the echo is its payload only.
		c := boundConn(t, addr)
		if _, err := c.Write(small); err != nil {
			t.Fatal(err)
		}
		expectEcho(t, c, 8, paySmall)
		c.Close()
		waitFor(t, "C closed", func() bool { return s.Conns() == 0 })

		// D: bound, sends the header of the large request only (its
		// frag_length claims the full size) and closes its side: a PDU
		// error, no answer built from bytes A left in the buffer.
		before := ev.count(EventPDUError)
		d := boundConn(t, addr)
		if _, err := d.Write(big[:HeaderLen]); err != nil {
			t.Fatal(err)
		}
		d.(interface{ CloseWrite() error }).CloseWrite()
		expectClosed(t, d)
		waitFor(t, "a PDU error for D", func() bool { return ev.count(EventPDUError) > before })
		d.Close()
		waitFor(t, "D closed", func() bool { return s.Conns() == 0 })
	}
}

package resilience

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/dcerpc"
	"github.com/kmsdns/kmsdns/responder/kms"
	"github.com/kmsdns/kmsdns/responder/kmsclient"
	"github.com/kmsdns/kmsdns/test/harness"
)

// bindPDU is a single-fragment bind offering NDR32 for the KMS interface.
func bindPDU(callID uint32) []byte {
	h := dcerpc.Header{Type: dcerpc.PTypeBind, Flags: dcerpc.FlagFirstFrag | dcerpc.FlagLastFrag, DataRep: dcerpc.DataRepLE, CallID: callID}
	return dcerpc.AppendBind(nil, h, &dcerpc.Bind{MaxXmitFrag: 5840, MaxRecvFrag: 5840,
		Contexts: []dcerpc.ContextItem{{ID: 0, Abstract: dcerpc.KMSInterface, Transfer: []dcerpc.SyntaxID{dcerpc.NDR32Syntax}}}})
}

// requestPDU is an NDR32 activation request with the given pfc_flags.
func requestPDU(t testing.TB, callID uint32, flags uint8) []byte {
	t.Helper()
	p := product(t)
	wire, _, err := kms.BuildRequest(kmsclient.NewRequest(p, p.Protocol, kmsclient.RandomCMID(), "hostile", time.Now()), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h := dcerpc.Header{Type: dcerpc.PTypeRequest, Flags: flags, DataRep: dcerpc.DataRepLE, CallID: callID}
	return dcerpc.AppendRequest(nil, h, &dcerpc.Request{ContextID: 0, Stub: dcerpc.AppendRequestStub(nil, dcerpc.NDR32, wire)})
}

// readPDU reads one PDU; it returns its header.
func readPDU(c net.Conn) (dcerpc.Header, error) {
	var hdr [dcerpc.HeaderLen]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return dcerpc.Header{}, err
	}
	h, err := dcerpc.ParseHeader(hdr[:])
	if err != nil {
		return h, err
	}
	_, err = io.CopyN(io.Discard, c, int64(h.FragLength)-dcerpc.HeaderLen)
	return h, err
}

// waitClosed reports whether the server closes c within limit, draining
// whatever it sends first; it returns the number of PDUs read.
func waitClosed(c net.Conn, limit time.Duration) (pdus int, closed bool) {
	c.SetReadDeadline(time.Now().Add(limit))
	for {
		if _, err := readPDU(c); err != nil {
			var ne net.Error
			return pdus, !(errors.As(err, &ne) && ne.Timeout())
		}
		pdus++
	}
}

// TestHostilePDUs runs each hostile client against one responder; each is
// bounded (closed or served), and afterwards a well-behaved client still
// activates, the errors are counted and the server's peak RSS is bounded.
func TestHostilePDUs(t *testing.T) {
	const ioTimeout = 2 * time.Second
	r := harness.StartResponder(t, t.TempDir(), "--group", testGroup, "--first-pdu-timeout", "2s", "--idle-timeout", "3s", "--io-timeout", "2s")
	dial := func(t *testing.T) net.Conn {
		c, err := net.DialTimeout("tcp4", r.Addr, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	bound := func(t *testing.T) net.Conn {
		c := dial(t)
		c.Write(bindPDU(1))
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		if h, err := readPDU(c); err != nil || h.Type != dcerpc.PTypeBindAck {
			t.Fatalf("bind: %v %v", h.Type, err)
		}
		return c
	}
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"oversized frag_length", func(t *testing.T) {
			c := dial(t)
			pdu := bindPDU(1)
			binary.LittleEndian.PutUint16(pdu[8:], 0xffff)
			c.Write(pdu) // claims 65535 bytes, sends the first 100 or so
			if n, closed := waitClosed(c, ioTimeout+2*time.Second); !closed || n != 0 {
				t.Errorf("oversized PDU: %d answers, closed %v; want closed without answer", n, closed)
			}
		}},
		{"fragment flood", func(t *testing.T) {
			c := bound(t)
			sent := 0
			c.SetWriteDeadline(time.Now().Add(3 * time.Second))
			for i := range 1000 {
				if _, err := c.Write(requestPDU(t, uint32(2+i), dcerpc.FlagFirstFrag)); err != nil {
					break
				}
				sent++
			}
			n, closed := waitClosed(c, ioTimeout+2*time.Second)
			t.Logf("sent %d first-only fragments; %d answers before close", sent, n)
			if !closed || n > 1 {
				t.Errorf("fragment flood: %d answers, closed %v; want the connection closed", n, closed)
			}
		}},
		{"half-open after half a header", func(t *testing.T) {
			c := dial(t)
			c.Write(bindPDU(1)[:8])
			c.(*net.TCPConn).CloseWrite()
			if n, closed := waitClosed(c, ioTimeout+2*time.Second); !closed || n != 0 {
				t.Errorf("half-open: %d answers, closed %v", n, closed)
			}
		}},
		{"silent half-open", func(t *testing.T) {
			c := dial(t)
			c.Write(bindPDU(1)[:20]) // header and a little body, then silence
			start := time.Now()
			if n, closed := waitClosed(c, 3*ioTimeout); !closed || n != 0 {
				t.Errorf("stalled PDU: %d answers, closed %v", n, closed)
			}
			if took := time.Since(start); took > ioTimeout+time.Second {
				t.Errorf("stalled PDU closed after %v, want about the io timeout %v", took, ioTimeout)
			}
		}},
		{"1000 binds without requests", func(t *testing.T) {
			c := dial(t)
			done := make(chan [2]int, 1)
			go func() {
				n, closed := waitClosed(c, 10*time.Second)
				b := 0
				if closed {
					b = 1
				}
				done <- [2]int{n, b}
			}()
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			sent := 0
			for i := range 1000 {
				if _, err := c.Write(bindPDU(uint32(1 + i))); err != nil {
					break
				}
				sent++
			}
			c.(*net.TCPConn).CloseWrite()
			res := <-done
			t.Logf("sent %d binds; %d answers; closed %v", sent, res[0], res[1] == 1)
			if res[1] != 1 {
				t.Errorf("server neither answered nor closed: %d answers of %d binds", res[0], sent)
			}
			if res[0] > sent {
				t.Errorf("%d answers for %d binds", res[0], sent)
			}
		}},
		{"1000 pipelined requests, responses unread", func(t *testing.T) {
			c := bound(t)
			c.SetWriteDeadline(time.Now().Add(3 * ioTimeout))
			sent := 0
			for i := range 1000 {
				if _, err := c.Write(requestPDU(t, uint32(2+i), dcerpc.FlagFirstFrag|dcerpc.FlagLastFrag)); err != nil {
					break
				}
				sent++
			}
			// Still not reading: the server's writes block on a full
			// socket buffer until its I/O deadline.
			time.Sleep(ioTimeout + time.Second)
			n, closed := waitClosed(c, 5*time.Second)
			t.Logf("wrote %d requests unread; then read %d responses; closed %v", sent, n, closed)
			if !closed && n != sent {
				t.Errorf("pipelining: %d responses for %d requests and the connection still open", n, sent)
			}
			if n > sent {
				t.Errorf("%d responses for %d requests", n, sent)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t)
		})
	}
	t.Cleanup(func() {
		// Runs after the parallel subtests finished.
		took := mustActivate(t, r.Addr, 5*time.Second)
		pduErrs, timeouts := event(t, r, "pdu_error"), event(t, r, "timeout")
		hwm := vmKiB(t, r, "VmHWM")
		t.Logf("afterwards: activation %v; pdu_error %v, timeout %v; server VmHWM %d KiB", took.Round(time.Millisecond), pduErrs, timeouts, hwm)
		if pduErrs < 2 {
			t.Errorf("pdu_error = %v, want at least 2 (oversized, fragment flood)", pduErrs)
		}
		if timeouts < 1 {
			t.Errorf("timeout = %v, want at least 1 (stalled PDU)", timeouts)
		}
		if hwm > 300<<10 {
			t.Errorf("server VmHWM %d KiB exceeds 300 MiB", hwm)
		}
	})
}

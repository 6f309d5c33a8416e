package dcerpc

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/netip"
	"testing"
)

// FuzzParsePDU feeds arbitrary bytes to the server's PDU handling: the
// stream is framed by frag_length exactly as a connection does, and each
// PDU goes through header validation, bind/alter_context negotiation or
// request decoding with a trivial handler. Nothing may panic, and what
// parses must pack back to something that parses the same.
func FuzzParsePDU(f *testing.F) {
	s := NewServer(HandlerFunc(func(_ context.Context, _ netip.AddrPort, req []byte) ([]byte, uint32) {
		if len(req) > 0 && req[0]&1 == 1 {
			return nil, statusFail
		}
		return req, 0
	}), ServerConfig{})
	f.Fuzz(func(t *testing.T, stream []byte) {
		c := &conn{s: s, ctx: context.Background(), rbuf: make([]byte, s.cfg.MaxPDUSize)}
		c.assoc.secAddr = "1688"
		for len(stream) > 0 {
			h, err := ParseHeader(stream)
			if err != nil {
				return
			}
			if int(h.FragLength) > len(c.rbuf) || int(h.FragLength) > len(stream) {
				return
			}
			pdu := c.rbuf[:copy(c.rbuf, stream[:h.FragLength])]
			stream = stream[h.FragLength:]
			checkRepack(t, pdu)
			out, err := c.dispatch(h, pdu)
			if err != nil {
				return
			}
			c.wbuf = out[:0]
			oh, err := ParseHeader(out)
			if err != nil || int(oh.FragLength) != len(out) || oh.CallID != h.CallID {
				t.Fatalf("answer %x to %x is not a well-formed PDU for call %d: %v", out, pdu, h.CallID, err)
			}
		}
	})
}

// checkRepack verifies that a parsed client PDU packs back to bytes that
// parse to the same value.
func checkRepack(t *testing.T, pdu []byte) {
	if h, b, err := parseBind(pdu); err == nil {
		re := AppendBind(nil, h, &b)
		h2, b2, err := parseBind(re)
		if err != nil || h2 != h || !bindEqual(b, b2) {
			t.Fatalf("bind %x repacked to %x: %v", pdu, re, err)
		}
	}
	if h, q, err := parseRequest(pdu); err == nil {
		re := AppendRequest(nil, h, &q)
		h2, q2, err := parseRequest(re)
		if err != nil || h2.CallID != h.CallID || q2.ContextID != q.ContextID || !bytes.Equal(q2.Stub, q.Stub) {
			t.Fatalf("request %x repacked to %x: %v", pdu, re, err)
		}
		for _, syn := range []Syntax{NDR32, NDR64} {
			if p, err := parseRequestStub(syn, q.Stub); err == nil {
				p2, err := parseRequestStub(syn, AppendRequestStub(nil, syn, p))
				if err != nil || !bytes.Equal(p, p2) {
					t.Fatalf("%v request stub %x: payload does not round-trip: %v", syn, q.Stub, err)
				}
			}
		}
	}
}

func bindEqual(a, b Bind) bool {
	if a.MaxXmitFrag != b.MaxXmitFrag || a.MaxRecvFrag != b.MaxRecvFrag || a.AssocGroup != b.AssocGroup || len(a.Contexts) != len(b.Contexts) {
		return false
	}
	for i := range a.Contexts {
		x, y := a.Contexts[i], b.Contexts[i]
		if x.ID != y.ID || x.Abstract != y.Abstract || len(x.Transfer) != len(y.Transfer) {
			return false
		}
		for j := range x.Transfer {
			if x.Transfer[j] != y.Transfer[j] {
				return false
			}
		}
	}
	return true
}

// FuzzClientResponse feeds arbitrary bytes to the client's decoding of a
// server's answers: bind_ack/alter_context_resp, response (both transfer
// syntaxes) and fault, including the call_id/context/type checks Call
// makes. Nothing may panic; decoded payloads must re-encode.
func FuzzClientResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, pdu []byte) {
		h, err := ParseHeader(pdu)
		if err != nil {
			return
		}
		if _, ack, err := parseBindAck(pdu); err == nil {
			re := appendBindAck(nil, h, &ack)
			_, ack2, err := parseBindAck(re)
			if err != nil || ack2.SecAddr != ack.SecAddr || len(ack2.Results) != len(ack.Results) {
				t.Fatalf("bind_ack %x repacked to %x: %v", pdu, re, err)
			}
		}
		parseFault(pdu)
		c := &Client{}
		req := Header{Type: PTypeRequest, CallID: h.CallID}
		var ctxID uint16
		if len(pdu) >= 22 {
			ctxID = binary.LittleEndian.Uint16(pdu[20:])
		}
		for _, syn := range []Syntax{NDR32, NDR64} {
			payload, status, err := c.answer(req, h, pdu, ctxID, syn)
			if err != nil || status != 0 {
				continue
			}
			p2, s2, err := parseResponseStub(syn, appendResponseStub(nil, syn, payload, 0))
			if err != nil || s2 != 0 || !bytes.Equal(p2, payload) {
				t.Fatalf("%v response payload %x does not round-trip: %v", syn, payload, err)
			}
		}
	})
}

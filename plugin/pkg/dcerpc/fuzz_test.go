package dcerpc

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"
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

// FuzzServeStream runs a connection's read loop (frame by frag_length,
// keep what follows a PDU for the next one) on arbitrary bytes, sent whole
// and again in pieces of piece bytes. Nothing may panic, every answer must
// be a well-formed PDU, and the answers must be those of the stream cut
// into PDUs beforehand (framedAnswers), however it arrived.
func FuzzServeStream(f *testing.F) {
	bind := AppendBind(nil, Header{Type: PTypeBind, Flags: FlagFirstFrag | FlagLastFrag, DataRep: DataRepLE, CallID: 1},
		&Bind{MaxXmitFrag: 5840, MaxRecvFrag: 5840, Contexts: []ContextItem{{ID: 0, Abstract: KMSInterface, Transfer: []SyntaxID{NDR32Syntax}}}})
	req := AppendRequest(nil, Header{Type: PTypeRequest, Flags: FlagFirstFrag | FlagLastFrag, DataRep: DataRepLE, CallID: 2},
		&Request{Stub: AppendRequestStub(nil, NDR32, []byte("payload"))})
	f.Add(append(append(bytes.Clone(bind), req...), req...), uint16(7))
	f.Add(append(bytes.Clone(bind), req[:30]...), uint16(16))
	f.Add(bytes.Clone(bind), uint16(1))
	f.Fuzz(func(t *testing.T, stream []byte, piece uint16) {
		want := framedAnswers(stream)
		whole := serveStream(t, stream, len(stream))
		cut := serveStream(t, stream, int(piece))
		if !bytes.Equal(whole, want) || !bytes.Equal(cut, want) {
			t.Fatalf("stream %x answered %x sent whole, %x in pieces of %d; want %x", stream, whole, cut, piece, want)
		}
		for out := whole; len(out) > 0; {
			h, err := ParseHeader(out)
			if err != nil || int(h.FragLength) > len(out) {
				t.Fatalf("answer stream %x: %v", whole, err)
			}
			out = out[h.FragLength:]
		}
	})
}

// framedAnswers is what a connection must answer to stream: the stream is
// cut into PDUs by frag_length up front, and each is answered until one is
// incomplete, oversized or refused.
func framedAnswers(stream []byte) []byte {
	s := NewServer(HandlerFunc(streamHandler), ServerConfig{})
	c := &conn{s: s, ctx: context.Background(), hctx: context.Background()}
	c.assoc.group, c.assoc.secAddr = 1, "1688"
	var all []byte
	for {
		h, err := ParseHeader(stream)
		if err != nil || int(h.FragLength) > s.cfg.MaxPDUSize || int(h.FragLength) > len(stream) {
			return all
		}
		out, err := c.dispatch(h, stream[:h.FragLength])
		if err != nil {
			return all
		}
		all = append(all, out...)
		c.wbuf = out[:0]
		stream = stream[h.FragLength:]
	}
}

func streamHandler(_ context.Context, _ netip.AddrPort, req []byte) ([]byte, uint32) {
	if len(req) > 0 && req[0]&1 == 1 {
		return nil, statusFail
	}
	return req, 0
}

// serveStream serves one connection whose peer sends stream in pieces of
// piece bytes (at least 1) and then closes its side, and returns what the
// server answered.
func serveStream(t *testing.T, stream []byte, piece int) []byte {
	var logged bytes.Buffer
	s := NewServer(HandlerFunc(streamHandler), ServerConfig{Logger: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelError}))})
	nc := &pieceConn{in: stream, piece: max(piece, 1)}
	c := &conn{s: s, nc: nc, ctx: context.Background(), hctx: context.Background()}
	c.assoc.group, c.assoc.secAddr = 1, "1688"
	c.state.Store(stateIdle)
	s.wg.Add(1)
	c.serve()
	if logged.Len() > 0 {
		t.Fatalf("serving %x logged %s", stream, logged.String())
	}
	return nc.out.Bytes()
}

// pieceConn is a connection whose peer sends in a fixed sequence of
// pieces: each Read returns at most piece bytes of in, then io.EOF once in
// is used up. Writes are collected in out. A fake, so that the cut of the
// stream is exactly the one the fuzzer chose.
type pieceConn struct {
	net.Conn // nil: only the methods below are called
	in       []byte
	piece    int
	out      bytes.Buffer
}

func (p *pieceConn) Read(b []byte) (int, error) {
	if len(p.in) == 0 {
		return 0, io.EOF
	}
	n := copy(b, p.in[:min(p.piece, len(p.in))])
	p.in = p.in[n:]
	return n, nil
}

func (p *pieceConn) Write(b []byte) (int, error)      { return p.out.Write(b) }
func (p *pieceConn) Close() error                     { return nil }
func (p *pieceConn) SetReadDeadline(time.Time) error  { return nil }
func (p *pieceConn) SetWriteDeadline(time.Time) error { return nil }

package dcerpc

import (
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
)

// fixedHandler answers every request with the same 260 bytes (a V6
// response's size) without allocating.
type fixedHandler struct{ resp []byte }

func (f fixedHandler) ServeKMS(context.Context, netip.AddrPort, []byte) ([]byte, uint32) {
	return f.resp, 0
}

// BenchmarkServerRoundTrip measures one request/response of a 260-byte
// payload on one persistent loopback connection, with a raw client writing
// a prepared request PDU, so allocs/op counts the server's work only.
func BenchmarkServerRoundTrip(b *testing.B) {
	for _, syn := range []Syntax{NDR32, NDR64} {
		b.Run(syn.String(), func(b *testing.B) {
			_, addr := startServer(b, "tcp4", fixedHandler{payloadOf(260, 1)}, ServerConfig{})
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			item := ContextItem{ID: 0, Abstract: KMSInterface, Transfer: []SyntaxID{syn.ID()}}
			h := Header{Type: PTypeBind, Flags: FlagFirstFrag | FlagLastFrag, DataRep: DataRepLE, CallID: 1}
			if _, err := nc.Write(AppendBind(nil, h, &Bind{MaxXmitFrag: 5840, MaxRecvFrag: 5840, Contexts: []ContextItem{item}})); err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 1024)
			if _, err := io.ReadFull(nc, buf[:HeaderLen]); err != nil {
				b.Fatal(err)
			}
			hdr, _ := ParseHeader(buf)
			io.ReadFull(nc, buf[HeaderLen:hdr.FragLength])
			_, ack, err := parseBindAck(buf[:hdr.FragLength])
			if err != nil || ack.Results[0].Result != resultAcceptance {
				b.Fatalf("bind: %+v %v", ack, err)
			}
			h.Type = PTypeRequest
			req := AppendRequest(nil, h, &Request{Stub: AppendRequestStub(nil, syn, payloadOf(260, 2))})
			respLen := len(appendKMSResponse(nil, h, 0, syn, payloadOf(260, 1), 0))
			b.SetBytes(int64(len(req) + respLen))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := nc.Write(req); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(nc, buf[:respLen]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkClientCall measures Client.Call against the server (both ends
// in this process) on one persistent connection, NDR64 after the first call.
func BenchmarkClientCall(b *testing.B) {
	_, addr := startServer(b, "tcp4", fixedHandler{payloadOf(260, 1)}, ServerConfig{})
	c, err := Dial(context.Background(), "tcp", addr, ClientConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	p := payloadOf(260, 2)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.Call(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseRequest(b *testing.B) {
	h := Header{Type: PTypeRequest, Flags: FlagFirstFrag | FlagLastFrag, DataRep: DataRepLE, CallID: 2}
	pdu := AppendRequest(nil, h, &Request{Stub: AppendRequestStub(nil, NDR64, payloadOf(260, 2))})
	b.SetBytes(int64(len(pdu)))
	b.ReportAllocs()
	for b.Loop() {
		_, q, err := parseRequest(pdu)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := parseRequestStub(NDR64, q.Stub); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendKMSResponse(b *testing.B) {
	h := Header{Flags: FlagFirstFrag | FlagLastFrag, DataRep: DataRepLE, CallID: 2}
	payload := payloadOf(260, 1)
	buf := make([]byte, 0, 512)
	b.SetBytes(int64(len(appendKMSResponse(nil, h, 1, NDR64, payload, 0))))
	b.ReportAllocs()
	for b.Loop() {
		buf = appendKMSResponse(buf[:0], h, 1, NDR64, payload, 0)
	}
}

func BenchmarkParseResponse(b *testing.B) {
	h := Header{Flags: FlagFirstFrag | FlagLastFrag, DataRep: DataRepLE, CallID: 2}
	pdu := appendKMSResponse(nil, h, 1, NDR64, payloadOf(260, 1), 0)
	b.SetBytes(int64(len(pdu)))
	b.ReportAllocs()
	for b.Loop() {
		_, r, err := parseResponse(pdu)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := parseResponseStub(NDR64, r.Stub); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNegotiate measures answering a Windows-like bind (160 bytes).
func BenchmarkNegotiate(b *testing.B) {
	items, _ := bindItems(ClientConfig{})
	h := Header{Type: PTypeBind, Flags: 0x13, DataRep: DataRepLE, CallID: 2}
	pdu := AppendBind(nil, h, &Bind{MaxXmitFrag: 5840, MaxRecvFrag: 5840, Contexts: items})
	out := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		a := association{group: 1, secAddr: "1688"}
		var err error
		if out, err = a.negotiate(out[:0], pdu); err != nil {
			b.Fatal(err)
		}
	}
}

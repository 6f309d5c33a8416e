package dcerpc

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// transcriptConns lists the transcripts' connections with the port and
// association group vlmcsd answered with.
var transcriptConns = []struct {
	file  string
	conn  int
	port  string
	group uint32
}{
	{"capture-ok.hex", 1, "1688", 0x41095125},
	{"capture-ok.hex", 2, "1688", 0x41095126},
	{"capture-ok.hex", 3, "1688", 0x41095127},
	{"capture-error.hex", 1, "11688", 0xb9e69927},
}

// secAddrPadOffset is where the alter_context_resp's two pad bytes after
// the empty secondary address sit; vlmcsd leaves garbage there.
const secAddrPadOffset = 26

func TestNegotiateTranscript(t *testing.T) {
	for _, tc := range transcriptConns {
		pdus := connPDUs(loadCapture(t, tc.file), tc.conn)
		bind, bindAck, alter, alterResp := pdus[0], pdus[1], pdus[2], pdus[3]
		a := association{group: tc.group, secAddr: tc.port}
		got, err := a.negotiate(nil, bind.b)
		if err != nil {
			t.Fatalf("%s conn %d: bind: %v", tc.file, tc.conn, err)
		}
		if !bytes.Equal(got, bindAck.b) {
			t.Errorf("%s conn %d: bind_ack\n got %x\nwant %x", tc.file, tc.conn, got, bindAck.b)
		}
		if a.lookup(0) != noSyntax || a.lookup(1) != NDR64 || a.lookup(2) != noSyntax {
			t.Errorf("after bind: ctx0 %v ctx1 %v ctx2 %v, want none, NDR64, none", a.lookup(0), a.lookup(1), a.lookup(2))
		}
		got, err = a.negotiate(nil, alter.b)
		if err != nil {
			t.Fatalf("%s conn %d: alter_context: %v", tc.file, tc.conn, err)
		}
		want := bytes.Clone(alterResp.b)
		if got[secAddrPadOffset] != 0 || got[secAddrPadOffset+1] != 0 {
			t.Errorf("alter_context_resp pad bytes %x, want zeros", got[secAddrPadOffset:secAddrPadOffset+2])
		}
		want[secAddrPadOffset], want[secAddrPadOffset+1] = 0, 0
		if !bytes.Equal(got, want) {
			t.Errorf("%s conn %d: alter_context_resp\n got %x\nwant %x", tc.file, tc.conn, got, want)
		}
		if a.lookup(0) != NDR32 || a.lookup(1) != NDR64 {
			t.Errorf("after alter_context: ctx0 %v ctx1 %v, want NDR32, NDR64", a.lookup(0), a.lookup(1))
		}
	}
}

// TestBindAckRepack parses the captured bind_ack and alter_context_resp PDUs
// and packs them back, pad garbage included.
func TestBindRepack(t *testing.T) {
	for _, tc := range transcriptConns {
		pdus := connPDUs(loadCapture(t, tc.file), tc.conn)
		for _, p := range pdus[:4] {
			var got []byte
			if p.fromClient {
				h, b, err := parseBind(p.b)
				if err != nil {
					t.Fatalf("ParseBind: %v", err)
				}
				got = AppendBind(nil, h, &b)
			} else {
				h, a, err := parseBindAck(p.b)
				if err != nil {
					t.Fatalf("ParseBindAck: %v", err)
				}
				if h.Type == PTypeBindAck && (a.SecAddr != tc.port || a.AssocGroup != tc.group) {
					t.Errorf("bind_ack sec_addr %q group %#x, want %q %#x", a.SecAddr, a.AssocGroup, tc.port, tc.group)
				}
				got = appendBindAck(nil, h, &a)
			}
			if !bytes.Equal(got, p.b) {
				t.Errorf("%s conn %d repack\n got %x\nwant %x", tc.file, tc.conn, got, p.b)
			}
		}
	}
}

// TestRequestResponseRepack parses every captured request and response,
// packs them back from the parsed fields and from the decoded NDR stub.
func TestRequestResponseRepack(t *testing.T) {
	for _, file := range []string{"capture-ok.hex", "capture-error.hex"} {
		var requests, responses int
		syntaxOf := map[uint16]Syntax{0: NDR32, 1: NDR64}
		var lastSyntax Syntax
		for _, p := range loadCapture(t, file) {
			h, err := ParseHeader(p.b)
			if err != nil {
				t.Fatal(err)
			}
			switch h.Type {
			case PTypeRequest:
				requests++
				_, q, err := parseRequest(p.b)
				if err != nil {
					t.Fatalf("ParseRequest: %v", err)
				}
				if got := AppendRequest(nil, h, &q); !bytes.Equal(got, p.b) {
					t.Errorf("request repack\n got %x\nwant %x", got, p.b)
				}
				syn := syntaxOf[q.ContextID]
				payload, err := parseRequestStub(syn, q.Stub)
				if err != nil {
					t.Fatalf("ParseRequestStub(%v): %v", syn, err)
				}
				if len(payload) != 252 && len(payload) != 260 {
					t.Errorf("request payload of %d bytes", len(payload))
				}
				q2 := Request{ContextID: q.ContextID, Stub: AppendRequestStub(nil, syn, payload)}
				if got := AppendRequest(nil, h, &q2); !bytes.Equal(got, p.b) {
					t.Errorf("request rebuilt from its payload\n got %x\nwant %x", got, p.b)
				}
				lastSyntax = syn
			case ptypeResponse:
				responses++
				_, r, err := parseResponse(p.b)
				if err != nil {
					t.Fatalf("ParseResponse: %v", err)
				}
				if got := appendResponse(nil, h, &r); !bytes.Equal(got, p.b) {
					t.Errorf("response repack\n got %x\nwant %x", got, p.b)
				}
				payload, status, err := parseResponseStub(lastSyntax, r.Stub)
				if err != nil {
					t.Fatalf("ParseResponseStub(%v): %v", lastSyntax, err)
				}
				if (status == 0) != (payload != nil) {
					t.Errorf("status 0x%08X with %d payload bytes", status, len(payload))
				}
				if got := appendKMSResponse(nil, h, r.ContextID, lastSyntax, payload, status); !bytes.Equal(got, p.b) {
					t.Errorf("response rebuilt from payload/status\n got %x\nwant %x", got, p.b)
				}
			}
		}
		if requests == 0 || requests != responses {
			t.Errorf("%s: %d requests, %d responses", file, requests, responses)
		}
	}
}

// TestErrorResponseExact builds the error response for 0xC004F042 and
// compares it with the captured PDU and the bytes quoted in the reference.
func TestErrorResponseExact(t *testing.T) {
	pdus := loadCapture(t, "capture-error.hex")
	want := pdus[len(pdus)-1].b
	h := Header{Flags: FlagFirstFrag | FlagLastFrag, DataRep: DataRepLE, CallID: 2}
	got := appendKMSResponse(nil, h, 0, NDR32, []byte("ignored payload"), statusFail)
	if !bytes.Equal(got, want) {
		t.Fatalf("error response\n got %x\nwant %x", got, want)
	}
	quoted := "050002031000000024000000020000000c00000000000000000000000000000042f004c0"
	if hex.EncodeToString(got) != quoted {
		t.Fatalf("error response %x differs from the reference's %s", got, quoted)
	}
	// NDR64: 8-byte size, 8-byte null referent, HRESULT.
	got64 := appendKMSResponse(nil, h, 1, NDR64, nil, statusFail)
	_, r, err := parseResponse(got64)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Stub) != 20 || r.AllocHint != 20 || binary.LittleEndian.Uint32(r.Stub[16:]) != statusFail {
		t.Fatalf("NDR64 error stub %x (alloc_hint %d)", r.Stub, r.AllocHint)
	}
}

// TestClientTranscript plays vlmcsd's side of connection 3 (V6, a second
// request over NDR64) over TCP and checks that the client writes exactly
// what vlmcs wrote and decodes what vlmcsd answered.
func TestClientTranscript(t *testing.T) {
	pdus := connPDUs(loadCapture(t, "capture-ok.hex"), 3)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srvErr := make(chan error, 1)
	go func() {
		srvErr <- func() error {
			nc, err := ln.Accept()
			if err != nil {
				return err
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(5 * time.Second))
			for i := 0; i < len(pdus); i += 2 {
				want := pdus[i].b
				got := make([]byte, len(want))
				if _, err := io.ReadFull(nc, got); err != nil {
					return err
				}
				if !bytes.Equal(got, want) {
					return &mismatch{i, got, want}
				}
				if _, err := nc.Write(pdus[i+1].b); err != nil {
					return err
				}
			}
			return nil
		}()
	}()

	// The request payloads: the captured requests' stubs, decoded.
	_, q1, _ := parseRequest(pdus[4].b)
	_, q2, _ := parseRequest(pdus[6].b)
	p1, err1 := parseRequestStub(NDR32, q1.Stub)
	p2, err2 := parseRequestStub(NDR64, q2.Stub)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	_, r1, _ := parseResponse(pdus[5].b)
	_, r2, _ := parseResponse(pdus[7].b)
	want1, _, _ := parseResponseStub(NDR32, r1.Stub)
	want2, _, _ := parseResponseStub(NDR64, r2.Stub)

	ctx := context.Background()
	c, err := Dial(ctx, "tcp", ln.Addr().String(), ClientConfig{})
	if err != nil {
		t.Fatalf("Dial: %v (server: %v)", err, <-srvErr)
	}
	defer c.Close()
	info := c.BindInfo()
	if !info.NDR32 || !info.NDR64 || !info.AlterContext || info.SecAddr != "1688" || info.AssocGroup != 0x41095127 || info.Features != 3 {
		t.Errorf("BindInfo = %+v", info)
	}
	for i, tc := range []struct {
		req, want []byte
		syn       Syntax
	}{{p1, want1, NDR32}, {p2, want2, NDR64}} {
		resp, status, err := c.Call(ctx, tc.req)
		if err != nil || status != 0 {
			t.Fatalf("call %d: status 0x%08X, %v", i, status, err)
		}
		if !bytes.Equal(resp, tc.want) {
			t.Errorf("call %d: response differs", i)
		}
		if c.LastSyntax() != tc.syn {
			t.Errorf("call %d: syntax %v, want %v", i, c.LastSyntax(), tc.syn)
		}
	}
	if err := <-srvErr; err != nil {
		t.Fatalf("transcript server: %v", err)
	}
}

type mismatch struct {
	i         int
	got, want []byte
}

func (m *mismatch) Error() string {
	return fmt.Sprintf("client PDU %d differs:\n got %x\nwant %x", m.i, m.got, m.want)
}

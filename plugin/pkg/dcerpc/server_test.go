package dcerpc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// events counts what the server reports to ServerConfig.Observe.
type events struct {
	mu sync.Mutex
	n  map[Event]int
}

func (e *events) observe(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.n == nil {
		e.n = make(map[Event]int)
	}
	e.n[ev]++
}

func (e *events) count(ev Event) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n[ev]
}

// waitFor polls cond until it holds or five seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	return nc
}

// readPDU reads one PDU framed by frag_length.
func readPDU(t *testing.T, nc net.Conn) []byte {
	t.Helper()
	hdr := make([]byte, HeaderLen)
	if _, err := io.ReadFull(nc, hdr); err != nil {
		t.Fatalf("reading a PDU header: %v", err)
	}
	n := binary.LittleEndian.Uint16(hdr[8:])
	pdu := make([]byte, n)
	copy(pdu, hdr)
	if _, err := io.ReadFull(nc, pdu[HeaderLen:]); err != nil {
		t.Fatalf("reading a PDU body: %v", err)
	}
	return pdu
}

// expectClosed checks that the server closes nc without sending anything.
func expectClosed(t *testing.T, nc net.Conn) {
	t.Helper()
	b := make([]byte, 64)
	n, err := nc.Read(b)
	if n > 0 {
		t.Fatalf("server sent %x, want the connection closed", b[:n])
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after 5s")
	}
	if err == nil {
		t.Fatal("read returned no data and no error")
	}
}

func bindPDU(callID uint32, ptype PType, items ...ContextItem) []byte {
	h := Header{Type: ptype, Flags: FlagFirstFrag | FlagLastFrag, DataRep: DataRepLE, CallID: callID}
	return AppendBind(nil, h, &Bind{MaxXmitFrag: 5840, MaxRecvFrag: 5840, Contexts: items})
}

func ndr32Item(id uint16) ContextItem {
	return ContextItem{ID: id, Abstract: KMSInterface, Transfer: []SyntaxID{NDR32Syntax}}
}

func requestPDU(callID uint32, ctxID, opnum uint16, stub []byte) []byte {
	h := Header{Type: PTypeRequest, Flags: FlagFirstFrag | FlagLastFrag, DataRep: DataRepLE, CallID: callID}
	return AppendRequest(nil, h, &Request{ContextID: ctxID, Opnum: opnum, Stub: stub})
}

// boundConn returns a raw connection bound with NDR32 as context 0.
func boundConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc := dialRaw(t, addr)
	if _, err := nc.Write(bindPDU(1, PTypeBind, ndr32Item(0))); err != nil {
		t.Fatal(err)
	}
	_, ack, err := parseBindAck(readPDU(t, nc))
	if err != nil || len(ack.Results) != 1 || ack.Results[0].Result != resultAcceptance {
		t.Fatalf("bind_ack %+v, %v", ack, err)
	}
	return nc
}

func TestMalformedInputClosesConnection(t *testing.T) {
	ev := &events{}
	_, addr := startServer(t, "tcp4", &echoHandler{}, ServerConfig{Observe: ev.observe})
	validBind := bindPDU(1, PTypeBind, ndr32Item(0))
	frag := requestPDU(2, 0, 0, AppendRequestStub(nil, NDR32, []byte("x")))
	frag[3] = FlagFirstFrag
	shorten := func(b []byte, n int) []byte {
		binary.LittleEndian.PutUint16(b[8:], uint16(n))
		return b[:n]
	}
	withHeader := func(mod func(b []byte)) []byte {
		b := bytes.Clone(validBind)
		mod(b)
		return b
	}
	tests := []struct {
		name  string
		send  []byte
		half  bool // close our write side after sending
		bound bool // bind NDR32 as context 0 first
	}{
		{"truncated header", validBind[:10], true, false},
		{"frag_length < 16", withHeader(func(b []byte) { b[8], b[9] = 15, 0 })[:16], false, false},
		{"frag_length over the cap", withHeader(func(b []byte) { binary.LittleEndian.PutUint16(b[8:], 1025) })[:16], false, false},
		{"frag_length 65535", withHeader(func(b []byte) { b[8], b[9] = 0xff, 0xff })[:16], false, false},
		{"version 4.0", withHeader(func(b []byte) { b[0] = 4 }), false, false},
		{"version 5.1", withHeader(func(b []byte) { b[1] = 1 }), false, false},
		{"big-endian data representation", withHeader(func(b []byte) { b[4] = 0 }), false, false},
		{"auth trailer", withHeader(func(b []byte) { b[10] = 8 }), false, false},
		{"unknown PTYPE 9", withHeader(func(b []byte) { b[2] = 9 }), false, false},
		{"response PTYPE from a client", withHeader(func(b []byte) { b[2] = byte(ptypeResponse) }), false, false},
		{"fragmented bind", withHeader(func(b []byte) { b[3] = FlagFirstFrag }), false, false},
		{"garbage bind body", withHeader(func(b []byte) {
			for i := HeaderLen; i < len(b); i++ {
				b[i] = 0xA5
			}
		}), false, false},
		{"bind with 0 context items", shorten(withHeader(func(b []byte) { b[24] = 0 }), 28), false, false},
		{"body shorter than frag_length", validBind[:len(validBind)-4], true, false},
		{"fragmented request", frag, false, true},
		{"request shorter than its fixed part", shorten(requestPDU(2, 0, 0, nil), 20), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := ev.count(EventPDUError)
			var nc net.Conn
			if tt.bound {
				nc = boundConn(t, addr)
			} else {
				nc = dialRaw(t, addr)
			}
			if _, err := nc.Write(tt.send); err != nil {
				t.Fatal(err)
			}
			if tt.half {
				nc.(*net.TCPConn).CloseWrite()
			}
			expectClosed(t, nc)
			waitFor(t, "a PDU error event", func() bool { return ev.count(EventPDUError) > before })
		})
	}
}

func TestGarbageAfterPDU(t *testing.T) {
	_, addr := startServer(t, "tcp4", &echoHandler{}, ServerConfig{})
	nc := dialRaw(t, addr)
	// A valid bind followed by bytes that are not a PDU header: the bind is
	// answered, then the connection ends.
	send := append(bindPDU(7, PTypeBind, ndr32Item(0)), bytes.Repeat([]byte{0xEE}, 16)...)
	if _, err := nc.Write(send); err != nil {
		t.Fatal(err)
	}
	h, err := ParseHeader(readPDU(t, nc))
	if err != nil || h.Type != PTypeBindAck || h.CallID != 7 {
		t.Fatalf("first answer %+v, %v; want bind_ack for call 7", h, err)
	}
	expectClosed(t, nc)
}

func TestFaults(t *testing.T) {
	ev := &events{}
	_, addr := startServer(t, "tcp4", &echoHandler{}, ServerConfig{Observe: ev.observe})
	good := AppendRequestStub(nil, NDR32, []byte("hello"))
	badStub := bytes.Clone(good)
	badStub[4] = 9 // conformance differs from the size
	tests := []struct {
		name   string
		bind   bool
		req    []byte
		status uint32
	}{
		{"request before any bind", false, requestPDU(5, 0, 0, good), ncaUnknownInterface},
		{"request on a context never bound", true, requestPDU(5, 3, 0, good), ncaUnknownInterface},
		{"opnum 1", true, requestPDU(5, 0, 1, good), ncaOpRangeError},
		{"conformance mismatch", true, requestPDU(5, 0, 0, badStub), badStubData},
		{"size beyond the stub", true, requestPDU(5, 0, 0, good[:10]), badStubData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := ev.count(EventFault)
			var nc net.Conn
			if tt.bind {
				nc = boundConn(t, addr)
			} else {
				nc = dialRaw(t, addr)
			}
			if _, err := nc.Write(tt.req); err != nil {
				t.Fatal(err)
			}
			pdu := readPDU(t, nc)
			h, f, err := parseFault(pdu)
			if err != nil {
				t.Fatalf("want a fault PDU, got %x: %v", pdu, err)
			}
			if len(pdu) != faultPDULen || h.Flags != 0x23 || h.CallID != 5 || f.Status != tt.status || f.AllocHint != 32 {
				t.Errorf("fault %x: flags %#x call %d status %#x, want flags 0x23 call 5 status %#x", pdu, h.Flags, h.CallID, f.Status, tt.status)
			}
			if ev.count(EventFault) != before+1 {
				t.Errorf("fault events %d, want %d", ev.count(EventFault), before+1)
			}
			if !tt.bind {
				return
			}
			// The connection stays usable.
			if _, err := nc.Write(requestPDU(6, 0, 0, good)); err != nil {
				t.Fatal(err)
			}
			h2, r, err := parseResponse(readPDU(t, nc))
			if err != nil || h2.CallID != 6 {
				t.Fatalf("after the fault: %+v %v", h2, err)
			}
			payload, status, err := parseResponseStub(NDR32, r.Stub)
			if err != nil || status != 0 || string(payload) != echoPrefix+"hello" {
				t.Fatalf("after the fault: %q 0x%08X %v", payload, status, err)
			}
		})
	}
}

func TestClientSeesFault(t *testing.T) {
	// Point the client's NDR32 context at an id the server never accepted:
	// the server answers nca_unk_if, which Call reports as a FaultError
	// while keeping the connection usable.
	_, addr := startServer(t, "tcp4", &echoHandler{}, ServerConfig{})
	c, err := Dial(context.Background(), "tcp", addr, ClientConfig{DisableNDR64: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.ctx32 = 9 // a context the server never accepted
	_, _, err = c.Call(context.Background(), []byte("x"))
	var fe *FaultError
	if !errors.As(err, &fe) || fe.Status != ncaUnknownInterface {
		t.Fatalf("Call = %v, want FaultError nca_unk_if", err)
	}
	c.ctx32 = 0
	if resp, _, err := c.Call(context.Background(), []byte("y")); err != nil || string(resp) != echoPrefix+"y" {
		t.Fatalf("Call after fault = %q, %v", resp, err)
	}
}

func TestNegotiationRules(t *testing.T) {
	other := SyntaxID{KMSInterface.UUID, 2}
	tests := []struct {
		name  string
		ptype PType
		items []ContextItem
		want  []result
	}{
		{"wrong interface", PTypeBind, []ContextItem{{ID: 0, Abstract: NDR32Syntax, Transfer: []SyntaxID{NDR32Syntax}}},
			[]result{{resultProviderRejection, reasonAbstractSyntaxNotSupported, SyntaxID{}}}},
		{"wrong interface version", PTypeBind, []ContextItem{{ID: 0, Abstract: other, Transfer: []SyntaxID{NDR32Syntax}}},
			[]result{{resultProviderRejection, reasonAbstractSyntaxNotSupported, SyntaxID{}}}},
		{"NDR32 only", PTypeBind, []ContextItem{ndr32Item(0)},
			[]result{{resultAcceptance, 0, NDR32Syntax}}},
		{"unknown transfer syntax", PTypeBind, []ContextItem{{ID: 0, Abstract: KMSInterface, Transfer: []SyntaxID{KMSInterface}}},
			[]result{{resultProviderRejection, reasonTransferSyntaxNotSupported, SyntaxID{}}}},
		{"BTFN bits masked", PTypeBind, []ContextItem{{ID: 0, Abstract: KMSInterface, Transfer: []SyntaxID{btfnSyntax(0xff)}}},
			[]result{{resultNegotiateAck, 3, SyntaxID{}}}},
		{"BTFN bit 1 only", PTypeBind, []ContextItem{{ID: 0, Abstract: KMSInterface, Transfer: []SyntaxID{btfnSyntax(2)}}},
			[]result{{resultNegotiateAck, 2, SyntaxID{}}}},
		{"NDR32+NDR64 in one item", PTypeBind, []ContextItem{{ID: 0, Abstract: KMSInterface, Transfer: []SyntaxID{NDR32Syntax, ndr64Syntax}}},
			[]result{{resultAcceptance, 0, ndr64Syntax}}},
		{"alter_context NDR32 with NDR64 offered", ptypeAlterContext, []ContextItem{ndr32Item(0), {ID: 1, Abstract: KMSInterface, Transfer: []SyntaxID{ndr64Syntax}}},
			[]result{{resultAcceptance, 0, NDR32Syntax}, {resultAcceptance, 0, ndr64Syntax}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := association{group: 1, secAddr: "1688"}
			out, err := a.negotiate(nil, bindPDU(3, tt.ptype, tt.items...))
			if err != nil {
				t.Fatal(err)
			}
			h, ack, err := parseBindAck(out)
			if err != nil {
				t.Fatal(err)
			}
			if h.CallID != 3 || ack.MaxRecvFrag != 5840 || ack.MaxXmitFrag != 5840 {
				t.Errorf("header/frag sizes not echoed: %+v %+v", h, ack)
			}
			if len(ack.Results) != len(tt.want) {
				t.Fatalf("results %+v, want %+v", ack.Results, tt.want)
			}
			for i := range tt.want {
				if ack.Results[i] != tt.want[i] {
					t.Errorf("result %d = %+v, want %+v", i, ack.Results[i], tt.want[i])
				}
			}
		})
	}
}

// TestAllowPeer checks that a refused peer's connection is closed without
// any answer.
func TestAllowPeer(t *testing.T) {
	ev := &events{}
	var asked netip.Addr
	var mu sync.Mutex
	allow := func(a netip.Addr) bool {
		mu.Lock()
		asked = a
		mu.Unlock()
		return false
	}
	_, addr := startServer(t, "tcp4", &echoHandler{}, ServerConfig{AllowPeer: allow, Observe: ev.observe})
	nc := dialRaw(t, addr)
	nc.Write(bindPDU(1, PTypeBind, ndr32Item(0)))
	expectClosed(t, nc)
	mu.Lock()
	defer mu.Unlock()
	if asked != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("AllowPeer asked about %v, want 127.0.0.1", asked)
	}
	if ev.count(EventConnRefused) != 1 || ev.count(EventConnOpened) != 0 {
		t.Errorf("events %v", ev.n)
	}
}

func TestFirstPDUDeadline(t *testing.T) {
	ev := &events{}
	_, addr := startServer(t, "tcp4", &echoHandler{}, ServerConfig{Limits: Limits{FirstPDUTimeout: 100 * time.Millisecond}, Observe: ev.observe})
	for _, sent := range [][]byte{nil, bindPDU(1, PTypeBind, ndr32Item(0))[:20]} {
		nc := dialRaw(t, addr)
		if sent != nil {
			nc.Write(sent)
		}
		start := time.Now()
		expectClosed(t, nc)
		if d := time.Since(start); d < 50*time.Millisecond {
			t.Errorf("closed after %v, before the first-PDU deadline", d)
		}
	}
	waitFor(t, "two timeout events", func() bool { return ev.count(EventTimeout) == 2 })
}

func TestIdleDeadline(t *testing.T) {
	_, addr := startServer(t, "tcp4", &echoHandler{}, ServerConfig{Limits: Limits{IdleTimeout: 100 * time.Millisecond}})
	nc := boundConn(t, addr)
	start := time.Now()
	expectClosed(t, nc)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("idle connection closed after %v", d)
	}
}

// blockingHandler blocks every request until release is closed or its
// context is cancelled. It tells entered when a request arrives and ctxErr
// what its context's Err was when it stopped waiting.
type blockingHandler struct {
	entered chan struct{}
	release chan struct{}
	ctxErr  chan error
}

func newBlockingHandler() *blockingHandler {
	return &blockingHandler{entered: make(chan struct{}, 16), release: make(chan struct{}), ctxErr: make(chan error, 16)}
}

func (b *blockingHandler) ServeKMS(ctx context.Context, peer netip.AddrPort, req []byte) ([]byte, uint32) {
	b.entered <- struct{}{}
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	b.ctxErr <- ctx.Err()
	return append([]byte("done:"), req...), 0
}

// idleConns counts the server's connections waiting for a PDU header.
func idleConns(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := s.oldest; c != nil; c = c.next {
		if c.state.Load() == stateIdle {
			n++
		}
	}
	return n
}

func TestConnectionCapEvictsOldestIdle(t *testing.T) {
	ev := &events{}
	h := newBlockingHandler()
	s, addr := startServer(t, "tcp4", h, ServerConfig{Limits: Limits{MaxConns: 2}, Observe: ev.observe})
	defer close(h.release)

	idle := boundConn(t, addr) // oldest, idle
	busy := boundConn(t, addr) // newer, will be busy in the handler
	busy.Write(requestPDU(2, 0, 0, AppendRequestStub(nil, NDR32, []byte("b"))))
	<-h.entered
	// The first connection becomes idle once its goroutine waits for the
	// next header, a moment after the bind_ack was written.
	waitFor(t, "two connections, one idle", func() bool { return s.Conns() == 2 && idleConns(s) == 1 })

	// A third connection evicts the idle one, not the busy one.
	third := boundConn(t, addr)
	expectClosed(t, idle)
	if ev.count(EventConnEvicted) != 1 {
		t.Errorf("evicted events %d, want 1", ev.count(EventConnEvicted))
	}
	// Make the third busy too: now nothing is idle and a fourth is refused.
	third.Write(requestPDU(2, 0, 0, AppendRequestStub(nil, NDR32, []byte("c"))))
	<-h.entered
	fourth := dialRaw(t, addr)
	expectClosed(t, fourth)
	waitFor(t, "a refused event", func() bool { return ev.count(EventConnRefused) == 1 })
	if s.Conns() != 2 {
		t.Errorf("Conns() = %d, want 2", s.Conns())
	}
}

func TestShutdownFinishesInFlight(t *testing.T) {
	h := newBlockingHandler()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(h, ServerConfig{})
	served := make(chan error, 1)
	go func() { served <- s.Serve(context.Background(), ln) }()
	addr := ln.Addr().String()

	c, err := Dial(context.Background(), "tcp", addr, ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	idle := boundConn(t, addr)

	type result struct {
		resp []byte
		err  error
	}
	called := make(chan result, 1)
	go func() {
		resp, _, err := c.Call(context.Background(), []byte("inflight"))
		called <- result{resp, err}
	}()
	<-h.entered

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	// The idle connection is closed at once; Shutdown waits for the busy one.
	expectClosed(t, idle)
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve = %v, want ErrServerClosed", err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("listener still accepts during shutdown")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	default:
	}
	close(h.release)
	r := <-called
	if r.err != nil || string(r.resp) != "done:inflight" {
		t.Fatalf("in-flight call = %q, %v", r.resp, r.err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if _, _, err := c.Call(context.Background(), []byte("late")); err == nil {
		t.Fatal("call after shutdown succeeded")
	}
	if s.Conns() != 0 {
		t.Errorf("Conns() = %d after Shutdown", s.Conns())
	}
}

func TestShutdownDeadlineForcesClose(t *testing.T) {
	h := newBlockingHandler()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(h, ServerConfig{})
	go s.Serve(context.Background(), ln)
	nc := boundConn(t, ln.Addr().String())
	nc.Write(requestPDU(2, 0, 0, AppendRequestStub(nil, NDR32, []byte("x"))))
	<-h.entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want DeadlineExceeded", err)
	}
	expectClosed(t, nc)
	// The forced close cancels the handler's context.
	if err := <-h.ctxErr; !errors.Is(err, context.Canceled) {
		t.Errorf("handler context: %v, want Canceled", err)
	}
	waitFor(t, "the handler's connection to end", func() bool { return s.Conns() == 0 })
}

func TestServeContextCancel(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := newBlockingHandler()
	s := NewServer(h, ServerConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	idle := boundConn(t, ln.Addr().String())
	busy := boundConn(t, ln.Addr().String())
	busy.Write(requestPDU(4, 0, 0, AppendRequestStub(nil, NDR32, []byte("z"))))
	<-h.entered

	// Cancelling Serve's context stops the listener and the idle connection;
	// the request in flight goes on with a live context and is answered.
	cancel()
	if err := <-served; err != nil {
		t.Errorf("Serve = %v, want nil after cancellation", err)
	}
	expectClosed(t, idle)
	close(h.release)
	if err := <-h.ctxErr; err != nil {
		t.Errorf("handler context: %v, want not cancelled", err)
	}
	hdr, r, err := parseResponse(readPDU(t, busy))
	if err != nil || hdr.CallID != 4 {
		t.Fatalf("in-flight response: %+v %v", hdr, err)
	}
	if p, _, err := parseResponseStub(NDR32, r.Stub); err != nil || string(p) != "done:z" {
		t.Fatalf("in-flight response %q, %v", p, err)
	}
	expectClosed(t, busy)
	if err := s.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestContextTableLimit(t *testing.T) {
	a := association{group: 1, secAddr: "1688"}
	// Fill the table with one alter_context per context id, then one more.
	for id := range uint16(maxBindContexts + 1) {
		out, err := a.negotiate(nil, bindPDU(3, ptypeAlterContext, ndr32Item(id)))
		if err != nil {
			t.Fatal(err)
		}
		_, ack, err := parseBindAck(out)
		if err != nil {
			t.Fatal(err)
		}
		want := result{resultAcceptance, 0, NDR32Syntax}
		if id == maxBindContexts {
			want = result{resultProviderRejection, reasonLocalLimitExceeded, SyntaxID{}}
		}
		if ack.Results[0] != want {
			t.Errorf("context %d: %+v, want %+v", id, ack.Results[0], want)
		}
	}
	// Re-binding a known id still works.
	out, _ := a.negotiate(nil, bindPDU(3, ptypeAlterContext, ndr32Item(0)))
	if _, ack, _ := parseBindAck(out); ack.Results[0].Result != resultAcceptance {
		t.Errorf("re-binding context 0: %+v", ack.Results[0])
	}
}

func TestHandlerPanicClosesOnlyItsConnection(t *testing.T) {
	h := HandlerFunc(func(_ context.Context, _ netip.AddrPort, req []byte) ([]byte, uint32) {
		if string(req) == "panic" {
			panic("handler bug")
		}
		return req, 0
	})
	_, addr := startServer(t, "tcp4", h, ServerConfig{})
	nc := boundConn(t, addr)
	nc.Write(requestPDU(2, 0, 0, AppendRequestStub(nil, NDR32, []byte("panic"))))
	expectClosed(t, nc)
	c, err := Dial(context.Background(), "tcp", addr, ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if resp, _, err := c.Call(context.Background(), []byte("fine")); err != nil || string(resp) != "fine" {
		t.Fatalf("after a panic elsewhere: %q, %v", resp, err)
	}
}

// requestOfLen returns an NDR32 request PDU for context 0 whose
// frag_length is exactly n, with its payload.
func requestOfLen(t *testing.T, callID uint32, n int) (pdu, payload []byte) {
	t.Helper()
	for size := n; size >= 0; size-- {
		payload = payloadOf(size, byte(callID))
		pdu = requestPDU(callID, 0, 0, AppendRequestStub(nil, NDR32, payload))
		if len(pdu) == n {
			return pdu, payload
		}
	}
	t.Fatalf("no request PDU of %d bytes", n)
	return nil, nil
}

// expectEcho reads one response PDU and checks its call ID and that it
// echoes payload.
func expectEcho(t *testing.T, nc net.Conn, callID uint32, payload []byte) {
	t.Helper()
	h, r, err := parseResponse(readPDU(t, nc))
	if err != nil || h.CallID != callID {
		t.Fatalf("answer %+v, %v; want the response to call %d", h, err, callID)
	}
	got, status, err := parseResponseStub(NDR32, r.Stub)
	if err != nil || status != 0 || !bytes.Equal(got, append([]byte(echoPrefix), payload...)) {
		t.Fatalf("call %d answered %x, status 0x%08X, %v; want the echo of %x", callID, got, status, err, payload)
	}
}

// The server reads whatever the peer sent, up to MaxPDUSize bytes, in one
// read: PDUs that arrive together, or a PDU that arrives with part of the
// next one, must each be answered in order, whatever the split.
func TestPDUsSharingReads(t *testing.T) {
	const maxPDU = 1024
	bind := bindPDU(1, PTypeBind, ndr32Item(0))
	req2, pay2 := requestOfLen(t, 2, 120)
	req3, pay3 := requestOfLen(t, 3, 200)
	// Follows the bind in one write: the first read ends inside it.
	big, payBig := requestOfLen(t, 4, maxPDU)
	cat := func(b ...[]byte) []byte { return bytes.Join(b, nil) }
	tests := []struct {
		name   string
		writes [][]byte
		calls  []uint32
		pays   [][]byte
	}{
		{"bind and two requests in one write", [][]byte{cat(bind, req2, req3)}, []uint32{2, 3}, [][]byte{pay2, pay3}},
		{"request split inside its header", [][]byte{cat(bind, req2[:7]), req2[7:]}, []uint32{2}, [][]byte{pay2}},
		{"request split inside its body", [][]byte{cat(bind, req2[:40]), cat(req2[40:], req3[:HeaderLen]), req3[HeaderLen:]}, []uint32{2, 3}, [][]byte{pay2, pay3}},
		{"largest request behind the bind", [][]byte{cat(bind, big)}, []uint32{4}, [][]byte{payBig}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, addr := startServer(t, "tcp4", &echoHandler{}, ServerConfig{MaxPDUSize: maxPDU})
			nc := dialRaw(t, addr)
			for i, w := range tt.writes {
				if _, err := nc.Write(w); err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					if h, err := ParseHeader(readPDU(t, nc)); err != nil || h.Type != PTypeBindAck {
						t.Fatalf("first answer %+v, %v; want a bind_ack", h, err)
					}
				}
			}
			for i, id := range tt.calls {
				expectEcho(t, nc, id, tt.pays[i])
			}
		})
	}
}

// A peer that closes after part of a PDU that came with the previous one
// ends inside a PDU: a PDU error, not a clean close.
func TestCloseInsideBufferedPDU(t *testing.T) {
	ev := &events{}
	_, addr := startServer(t, "tcp4", &echoHandler{}, ServerConfig{Observe: ev.observe})
	req, _ := requestOfLen(t, 2, 120)
	for _, cut := range []int{7, 40} {
		t.Run(strconv.Itoa(cut), func(t *testing.T) {
			before := ev.count(EventPDUError)
			nc := dialRaw(t, addr)
			if _, err := nc.Write(append(bindPDU(1, PTypeBind, ndr32Item(0)), req[:cut]...)); err != nil {
				t.Fatal(err)
			}
			readPDU(t, nc)
			nc.(*net.TCPConn).CloseWrite()
			expectClosed(t, nc)
			waitFor(t, "a PDU error event", func() bool { return ev.count(EventPDUError) > before })
		})
	}
}

// Connection goroutines wait for the next connection once theirs ends;
// Shutdown must end them all, whether they served one connection or many.
func TestShutdownEndsConnectionGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(&echoHandler{}, ServerConfig{})
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background(), ln) }()
	// Sequential connections reuse a goroutine; concurrent ones need
	// several.
	for range 3 {
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				c, err := Dial(context.Background(), "tcp", ln.Addr().String(), ClientConfig{})
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				if _, status, err := c.Call(context.Background(), []byte("x")); err != nil || status != 0 {
					t.Errorf("call: status 0x%08X, %v", status, err)
				}
			})
		}
		wg.Wait()
	}
	waitFor(t, "every connection closed", func() bool { return s.Conns() == 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-done; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve returned %v, want ErrServerClosed", err)
	}
	waitFor(t, "the server's goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

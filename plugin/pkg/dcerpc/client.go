package dcerpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// DefaultClientTimeout bounds each client round trip when
// ClientConfig.Timeout is zero.
const DefaultClientTimeout = 10 * time.Second

// clientMaxPDU is the largest PDU the client reads; KMS answers are at most
// a few hundred bytes.
const clientMaxPDU = 4096

// clientMaxFrag is the max_xmit_frag/max_recv_frag Windows and vlmcs offer.
const clientMaxFrag = 5840

// firstCallID is the call_id vlmcs uses for its bind, alter_context and
// first request.
const firstCallID = 2

// ClientConfig configures Dial. The zero value binds like a Windows client
// (or vlmcs): NDR32 and NDR64 plus bind-time feature negotiation.
type ClientConfig struct {
	// DisableNDR64 offers NDR32 only.
	DisableNDR64 bool
	// DisableBTFN omits the bind-time feature negotiation item.
	DisableBTFN bool
	// Timeout bounds connecting and each round trip (a ctx deadline, when
	// earlier, wins). Zero means DefaultClientTimeout.
	Timeout time.Duration
}

// BindInfo describes what a Client negotiated.
type BindInfo struct {
	// NDR32 and NDR64 report which transfer syntaxes were accepted.
	NDR32, NDR64 bool
	// AlterContext is set when NDR32 was obtained by an alter_context after
	// the bind rejected it (the Windows 8+ host behaviour).
	AlterContext bool
	// Features holds the feature bits the server acknowledged (BTFN).
	Features uint16
	// SecAddr is the bind_ack's secondary address (the server's port).
	SecAddr string
	// AssocGroup is the association group the server assigned.
	AssocGroup uint32
	// MaxXmitFrag and MaxRecvFrag are the server's fragment sizes.
	MaxXmitFrag, MaxRecvFrag uint16
}

// Client is a DCE/RPC connection bound to the KMS interface. Its methods
// are safe for concurrent use; calls are serialised.
type Client struct {
	mu      sync.Mutex
	nc      net.Conn
	timeout time.Duration
	info    BindInfo
	ctx32   uint16
	ctx64   uint16
	callID  uint32
	calls   int
	last    Syntax
	broken  error
	rbuf    []byte
	wbuf    []byte
	sbuf    []byte
}

// Dial connects to addr and binds to the KMS interface like a Windows
// client: context 0 NDR32, context 1 NDR64, context 2 bind-time feature
// negotiation (bits 0x0003), max fragments 5840, flags FIRST|LAST|CONC_MPX.
// When the server rejects NDR32 but accepts NDR64 it follows up with an
// alter_context for NDR32, as Windows does.
func Dial(ctx context.Context, network, addr string, cfg ClientConfig) (*Client, error) {
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultClientTimeout
	}
	// No TCP keep-alive: every exchange has a deadline, so a dead peer
	// is found without it, and Go's default costs four setsockopt calls
	// per connection (a probe or a client is often one connection per
	// call).
	d := net.Dialer{Timeout: timeout, KeepAlive: -1}
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	c := &Client{
		nc:      nc,
		timeout: timeout,
		callID:  firstCallID,
		rbuf:    make([]byte, clientMaxPDU),
		wbuf:    make([]byte, 0, 512),
	}
	if err := c.bind(ctx, cfg); err != nil {
		nc.Close()
		return nil, fmt.Errorf("rpc: bind to %s: %w", addr, err)
	}
	return c, nil
}

// Probe reports whether a KMS RPC endpoint answers at addr ("host:port"):
// it connects, binds (and alter_contexts when needed) and closes.
func Probe(ctx context.Context, addr string, timeout time.Duration) error {
	c, err := Dial(ctx, "tcp", addr, ClientConfig{Timeout: timeout})
	if err != nil {
		return err
	}
	return c.Close()
}

// Close closes the connection.
func (c *Client) Close() error {
	return c.nc.Close()
}

// BindInfo returns what the bind negotiated.
func (c *Client) BindInfo() BindInfo {
	return c.info
}

// LastSyntax returns the transfer syntax of the last Call, or the zero Syntax (none negotiated)
// before the first.
func (c *Client) LastSyntax() Syntax {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// LocalAddr returns the local address of the connection.
func (c *Client) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// bindItems lists the context items of the client's bind and what each is.
func bindItems(cfg ClientConfig) ([]ContextItem, []Syntax) {
	items := []ContextItem{{ID: 0, Abstract: KMSInterface, Transfer: []SyntaxID{NDR32Syntax}}}
	kinds := []Syntax{NDR32}
	if !cfg.DisableNDR64 {
		items = append(items, ContextItem{ID: 1, Abstract: KMSInterface, Transfer: []SyntaxID{ndr64Syntax}})
		kinds = append(kinds, NDR64)
	}
	if !cfg.DisableBTFN {
		btfn := btfnSyntax(featureSecurityContextMultiplexing | featureKeepConnectionOnOrphan)
		items = append(items, ContextItem{ID: uint16(len(items)), Abstract: KMSInterface, Transfer: []SyntaxID{btfn}})
		kinds = append(kinds, noSyntax)
	}
	return items, kinds
}

func (c *Client) bind(ctx context.Context, cfg ClientConfig) error {
	items, kinds := bindItems(cfg)
	h := Header{Type: PTypeBind, Flags: FlagFirstFrag | FlagLastFrag | flagConcMPX, DataRep: DataRepLE, CallID: c.callID}
	req := Bind{MaxXmitFrag: clientMaxFrag, MaxRecvFrag: clientMaxFrag, Contexts: items}
	ack, err := c.bindRoundTrip(ctx, h, &req, PTypeBindAck)
	if err != nil {
		return err
	}
	if len(ack.Results) != len(items) {
		return fmt.Errorf("rpc: bind_ack has %d results for %d context items", len(ack.Results), len(items))
	}
	c.info.SecAddr = ack.SecAddr
	c.info.AssocGroup = ack.AssocGroup
	c.info.MaxXmitFrag, c.info.MaxRecvFrag = ack.MaxXmitFrag, ack.MaxRecvFrag
	for i, res := range ack.Results {
		switch kinds[i] {
		case NDR32:
			if res.Result == resultAcceptance && res.Transfer == NDR32Syntax {
				c.info.NDR32, c.ctx32 = true, items[i].ID
			}
		case NDR64:
			if res.Result == resultAcceptance && res.Transfer == ndr64Syntax {
				c.info.NDR64, c.ctx64 = true, items[i].ID
			}
		default:
			if res.Result == resultNegotiateAck {
				c.info.Features = res.Reason
			}
		}
	}
	if !c.info.NDR32 && c.info.NDR64 {
		h.Type = ptypeAlterContext
		alter := Bind{MaxXmitFrag: clientMaxFrag, MaxRecvFrag: clientMaxFrag, Contexts: items[:1]}
		resp, err := c.bindRoundTrip(ctx, h, &alter, ptypeAlterContextResp)
		if err != nil {
			return fmt.Errorf("alter_context: %w", err)
		}
		if len(resp.Results) != 1 {
			return fmt.Errorf("rpc: alter_context_resp has %d results for 1 context item", len(resp.Results))
		}
		if resp.Results[0].Result == resultAcceptance && resp.Results[0].Transfer == NDR32Syntax {
			c.info.NDR32, c.ctx32, c.info.AlterContext = true, items[0].ID, true
		}
	}
	if !c.info.NDR32 && !c.info.NDR64 {
		return ErrNoSyntax
	}
	return nil
}

func (c *Client) bindRoundTrip(ctx context.Context, h Header, b *Bind, want PType) (bindAck, error) {
	c.wbuf = AppendBind(c.wbuf[:0], h, b)
	rh, pdu, err := c.roundTrip(ctx, c.wbuf)
	if err != nil {
		return bindAck{}, err
	}
	if rh.Type != want {
		return bindAck{}, &UnexpectedPDUError{Want: want, Got: rh.Type}
	}
	if rh.CallID != h.CallID {
		return bindAck{}, fmt.Errorf("rpc: %v call_id %d, want %d", want, rh.CallID, h.CallID)
	}
	if rh.Flags&(FlagFirstFrag|FlagLastFrag) != FlagFirstFrag|FlagLastFrag {
		return bindAck{}, fmt.Errorf("rpc: %v flags 0x%02x: fragmented answers are not supported", want, rh.Flags)
	}
	_, ack, err := parseBindAck(pdu)
	return ack, err
}

// roundTrip writes one PDU and reads one back, bounded by the timeout, the
// ctx deadline and ctx cancellation. The answer aliases c.rbuf.
func (c *Client) roundTrip(ctx context.Context, pdu []byte) (Header, []byte, error) {
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.nc.SetDeadline(deadline)
	if ctx.Done() != nil {
		// Cancellation aborts the I/O by moving the deadline to the past.
		stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Unix(1, 0)) })
		defer stop()
	}
	h, b, err := c.exchange(pdu)
	if err != nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return h, b, err
}

func (c *Client) exchange(pdu []byte) (Header, []byte, error) {
	if _, err := c.nc.Write(pdu); err != nil {
		return Header{}, nil, err
	}
	// One read takes the whole answer when it arrived whole (it usually
	// has: one PDU, one write); the rest of a longer one is read after.
	n, err := io.ReadAtLeast(c.nc, c.rbuf, HeaderLen)
	if err != nil {
		return Header{}, nil, err
	}
	h, err := ParseHeader(c.rbuf[:HeaderLen])
	if err != nil {
		return h, nil, err
	}
	end := int(h.FragLength)
	if end > len(c.rbuf) {
		return h, nil, parseErr("header", 8, "frag_length %d exceeds the limit of %d", h.FragLength, len(c.rbuf))
	}
	if n > end {
		// A server answers each PDU with one PDU: more is not an answer
		// to anything this client sent.
		return h, nil, fmt.Errorf("rpc: %d bytes after the %d-byte %v answer", n-end, end, h.Type)
	}
	if _, err := io.ReadFull(c.nc, c.rbuf[n:end]); err != nil {
		return h, nil, err
	}
	return h, c.rbuf[:end], nil
}

// Call sends one RequestActivation call carrying payload and returns the
// response bytes (a fresh copy) and the HRESULT the server returned. A
// non-zero status comes with an empty response and a nil error. A fault PDU
// is returned as *FaultError; any other protocol or transport error makes
// the Client unusable. The first call uses NDR32 and later ones NDR64 when
// both were accepted, as Windows clients do.
func (c *Client) Call(ctx context.Context, payload []byte) (response []byte, status uint32, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return nil, 0, c.broken
	}
	syn, ctxID := NDR64, c.ctx64
	if !c.info.NDR64 || (c.calls == 0 && c.info.NDR32) {
		syn, ctxID = NDR32, c.ctx32
	}
	c.sbuf = AppendRequestStub(c.sbuf[:0], syn, payload)
	h := Header{Type: PTypeRequest, Flags: FlagFirstFrag | FlagLastFrag, DataRep: DataRepLE, CallID: c.callID}
	limit := 0xffff
	if c.info.MaxRecvFrag != 0 {
		limit = int(c.info.MaxRecvFrag)
	}
	if n := HeaderLen + 8 + len(c.sbuf); n > limit {
		return nil, 0, fmt.Errorf("rpc: request PDU of %d bytes exceeds the server's fragment size %d", n, limit)
	}
	c.wbuf = AppendRequest(c.wbuf[:0], h, &Request{ContextID: ctxID, Stub: c.sbuf})
	rh, pdu, err := c.roundTrip(ctx, c.wbuf)
	if err != nil {
		c.broken = fmt.Errorf("rpc: connection unusable after: %w", err)
		return nil, 0, err
	}
	response, status, err = c.answer(h, rh, pdu, ctxID, syn)
	if err != nil {
		var fe *FaultError
		if !errors.As(err, &fe) {
			c.broken = fmt.Errorf("rpc: connection unusable after: %w", err)
		}
		return nil, 0, err
	}
	c.callID++
	c.calls++
	c.last = syn
	return response, status, nil
}

// answer checks and decodes the server's answer to request h.
func (c *Client) answer(h, rh Header, pdu []byte, ctxID uint16, syn Syntax) ([]byte, uint32, error) {
	switch rh.Type {
	case ptypeResponse:
	case ptypeFault:
		// vlmcsd does not echo the call_id in faults, so it is not checked.
		_, f, err := parseFault(pdu)
		if err != nil {
			return nil, 0, err
		}
		return nil, 0, &FaultError{Status: f.Status}
	default:
		return nil, 0, &UnexpectedPDUError{Want: ptypeResponse, Got: rh.Type}
	}
	if rh.CallID != h.CallID {
		return nil, 0, fmt.Errorf("rpc: response call_id %d, want %d", rh.CallID, h.CallID)
	}
	_, r, err := parseResponse(pdu)
	if err != nil {
		return nil, 0, err
	}
	if r.ContextID != ctxID {
		return nil, 0, fmt.Errorf("rpc: response p_cont_id %d, want %d", r.ContextID, ctxID)
	}
	payload, status, err := parseResponseStub(syn, r.Stub)
	if err != nil {
		return nil, 0, err
	}
	if payload == nil {
		return nil, status, nil
	}
	return append([]byte(nil), payload...), status, nil
}

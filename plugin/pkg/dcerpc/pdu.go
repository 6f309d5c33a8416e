package dcerpc

import (
	"encoding/binary"
	"fmt"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
)

// HeaderLen is the length of the common header every PDU starts with.
const HeaderLen = 16

// PType is the PDU type (the third byte of the common header).
type PType uint8

// PDU types of the connection-oriented protocol that KMS uses.
const (
	PTypeRequest          PType = 0
	ptypeResponse         PType = 2
	ptypeFault            PType = 3
	PTypeBind             PType = 11
	PTypeBindAck          PType = 12
	ptypeBindNak          PType = 13
	ptypeAlterContext     PType = 14
	ptypeAlterContextResp PType = 15
)

// String returns the PDU type's name as in the DCE/RPC specification.
func (t PType) String() string {
	switch t {
	case PTypeRequest:
		return "request"
	case ptypeResponse:
		return "response"
	case ptypeFault:
		return "fault"
	case PTypeBind:
		return "bind"
	case PTypeBindAck:
		return "bind_ack"
	case ptypeBindNak:
		return "bind_nak"
	case ptypeAlterContext:
		return "alter_context"
	case ptypeAlterContextResp:
		return "alter_context_resp"
	}
	return fmt.Sprintf("ptype(%d)", uint8(t))
}

// pfc_flags bits.
const (
	FlagFirstFrag     = 0x01
	FlagLastFrag      = 0x02
	flagPendingCancel = 0x04
	flagConcMPX       = 0x10
	flagDidNotExecute = 0x20
	flagMaybe         = 0x40
	flagObjectUUID    = 0x80
)

// DataRepLE is the data representation label for little-endian integers,
// ASCII characters and IEEE floats, the only one this package speaks.
var DataRepLE = [4]byte{0x10, 0, 0, 0}

// Header is the 16-byte common header of a connection-oriented PDU. The
// version (5.0) is implied: ParseHeader rejects any other.
type Header struct {
	Type       PType
	Flags      uint8
	DataRep    [4]byte
	FragLength uint16
	AuthLength uint16
	CallID     uint32
}

// ParseHeader reads and validates the common header at the start of b:
// version 5.0, little-endian data representation, no authentication
// trailer and frag_length at least HeaderLen. It does not check
// frag_length against len(b), so it can be used on the first 16 bytes of a
// stream before the rest has been read.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderLen {
		return h, parseErr("header", len(b), "truncated: %d of %d bytes", len(b), HeaderLen)
	}
	if b[0] != 5 || b[1] != 0 {
		return h, parseErr("header", 0, "rpc version %d.%d, want 5.0", b[0], b[1])
	}
	h.Type = PType(b[2])
	h.Flags = b[3]
	copy(h.DataRep[:], b[4:8])
	h.FragLength = binary.LittleEndian.Uint16(b[8:])
	h.AuthLength = binary.LittleEndian.Uint16(b[10:])
	h.CallID = binary.LittleEndian.Uint32(b[12:])
	if h.DataRep[0]&0xf0 != 0x10 || h.DataRep[1] != 0 {
		return h, parseErr("header", 4, "data representation % x is not little-endian/ASCII/IEEE", h.DataRep)
	}
	if h.FragLength < HeaderLen {
		return h, parseErr("header", 8, "frag_length %d is shorter than the header", h.FragLength)
	}
	if h.AuthLength != 0 {
		return h, parseErr("header", 10, "auth_length %d: authentication is not supported", h.AuthLength)
	}
	return h, nil
}

// appendHeader appends h with rpc_vers 5.0; the frag_length is written as
// given and normally patched by finishPDU.
func appendHeader(dst []byte, h Header) []byte {
	dst = append(dst, 5, 0, byte(h.Type), h.Flags)
	dst = append(dst, h.DataRep[:]...)
	dst = binary.LittleEndian.AppendUint16(dst, h.FragLength)
	dst = binary.LittleEndian.AppendUint16(dst, h.AuthLength)
	return binary.LittleEndian.AppendUint32(dst, h.CallID)
}

// finishPDU writes the length of the PDU that starts at dst[start] into its
// frag_length field.
func finishPDU(dst []byte, start int) []byte {
	binary.LittleEndian.PutUint16(dst[start+8:], uint16(len(dst)-start))
	return dst
}

// checkPDU verifies that pdu holds exactly one PDU of type want.
func checkPDU(what string, pdu []byte, want ...PType) (Header, error) {
	h, err := ParseHeader(pdu)
	if err != nil {
		return h, err
	}
	ok := false
	for _, t := range want {
		ok = ok || h.Type == t
	}
	if !ok {
		return h, parseErr(what, 2, "PDU type %v", h.Type)
	}
	if int(h.FragLength) != len(pdu) {
		return h, parseErr(what, 8, "frag_length %d but %d bytes given", h.FragLength, len(pdu))
	}
	return h, nil
}

// reader is a bounds-checked little-endian cursor over one PDU. The first
// failed read records a ParseError and makes every later read a no-op.
type reader struct {
	b    []byte
	off  int
	what string
	err  error
}

func (r *reader) need(n int, field string) bool {
	if r.err != nil {
		return false
	}
	if n < 0 || len(r.b)-r.off < n {
		r.err = parseErr(r.what, r.off, "truncated %s: need %d bytes, have %d", field, n, len(r.b)-r.off)
		return false
	}
	return true
}

func (r *reader) u8(field string) uint8 {
	if !r.need(1, field) {
		return 0
	}
	v := r.b[r.off]
	r.off++
	return v
}

func (r *reader) u16(field string) uint16 {
	if !r.need(2, field) {
		return 0
	}
	v := binary.LittleEndian.Uint16(r.b[r.off:])
	r.off += 2
	return v
}

func (r *reader) u32(field string) uint32 {
	if !r.need(4, field) {
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b[r.off:])
	r.off += 4
	return v
}

func (r *reader) u64(field string) uint64 {
	if !r.need(8, field) {
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b[r.off:])
	r.off += 8
	return v
}

func (r *reader) bytes(n int, field string) []byte {
	if !r.need(n, field) {
		return nil
	}
	v := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return v
}

func (r *reader) skip(n int, field string) {
	if r.need(n, field) {
		r.off += n
	}
}

// align skips to the next multiple of n (a power of two) from the start of b.
func (r *reader) align(n int, field string) {
	r.skip((n-r.off%n)%n, field)
}

func (r *reader) guid(field string) guid.GUID {
	var g guid.GUID
	if r.need(16, field) {
		copy(g[:], r.b[r.off:])
		r.off += 16
	}
	return g
}

func (r *reader) syntax(field string) SyntaxID {
	var s SyntaxID
	s.UUID = r.guid(field)
	s.Version = r.u32(field + " version")
	return s
}

// fail records a semantic error at the current offset unless one is set.
func (r *reader) fail(off int, format string, args ...any) {
	if r.err == nil {
		r.err = parseErr(r.what, off, format, args...)
	}
}

// end reports trailing bytes after the last field as an error.
func (r *reader) end() {
	if r.err == nil && r.off != len(r.b) {
		r.err = parseErr(r.what, r.off, "%d unexpected trailing bytes", len(r.b)-r.off)
	}
}

func appendSyntax(dst []byte, s SyntaxID) []byte {
	dst = append(dst, s.UUID[:]...)
	return binary.LittleEndian.AppendUint32(dst, s.Version)
}

func padTo(dst []byte, start, n int) []byte {
	for (len(dst)-start)%n != 0 {
		dst = append(dst, 0)
	}
	return dst
}

// ContextItem is one presentation context offered in a bind or
// alter_context PDU.
type ContextItem struct {
	ID       uint16
	Abstract SyntaxID
	Transfer []SyntaxID
}

// Bind is the body of a bind or alter_context PDU.
type Bind struct {
	MaxXmitFrag uint16
	MaxRecvFrag uint16
	AssocGroup  uint32
	Contexts    []ContextItem
}

// maxBindContexts bounds the context items accepted in one bind; KMS clients
// send three.
const maxBindContexts = 16

// maxTransferSyntaxes bounds the transfer syntaxes of one context item.
const maxTransferSyntaxes = 8

// parseBind decodes a bind or alter_context PDU (header included). The
// number of context items and of transfer syntaxes per item is bounded, and
// every item must be complete.
func parseBind(pdu []byte) (Header, Bind, error) {
	var b Bind
	h, err := checkPDU("bind", pdu, PTypeBind, ptypeAlterContext)
	if err != nil {
		return h, b, err
	}
	r := reader{b: pdu, off: HeaderLen, what: h.Type.String()}
	b.MaxXmitFrag = r.u16("max_xmit_frag")
	b.MaxRecvFrag = r.u16("max_recv_frag")
	b.AssocGroup = r.u32("assoc_group_id")
	n := int(r.u8("n_context_elem"))
	r.skip(3, "n_context_elem padding")
	if r.err == nil && n > maxBindContexts {
		r.fail(24, "%d context items, at most %d supported", n, maxBindContexts)
	}
	if r.err == nil && n == 0 {
		r.fail(24, "no context items")
	}
	if r.err == nil {
		b.Contexts = make([]ContextItem, 0, n)
	}
	for i := 0; i < n && r.err == nil; i++ {
		var c ContextItem
		c.ID = r.u16("p_cont_id")
		itemOff := r.off
		nt := int(r.u8("n_transfer_syn"))
		r.skip(1, "context item padding")
		c.Abstract = r.syntax("abstract_syntax")
		if r.err == nil && (nt == 0 || nt > maxTransferSyntaxes) {
			r.fail(itemOff, "context item %d has %d transfer syntaxes, want 1..%d", i, nt, maxTransferSyntaxes)
		}
		if r.err == nil {
			c.Transfer = make([]SyntaxID, 0, nt)
		}
		for j := 0; j < nt && r.err == nil; j++ {
			c.Transfer = append(c.Transfer, r.syntax("transfer_syntax"))
		}
		b.Contexts = append(b.Contexts, c)
	}
	r.end()
	if r.err != nil {
		return h, Bind{}, r.err
	}
	return h, b, nil
}

// AppendBind appends a bind or alter_context PDU (h.Type says which) and
// sets its frag_length.
func AppendBind(dst []byte, h Header, b *Bind) []byte {
	start := len(dst)
	dst = appendHeader(dst, h)
	dst = binary.LittleEndian.AppendUint16(dst, b.MaxXmitFrag)
	dst = binary.LittleEndian.AppendUint16(dst, b.MaxRecvFrag)
	dst = binary.LittleEndian.AppendUint32(dst, b.AssocGroup)
	dst = append(dst, byte(len(b.Contexts)), 0, 0, 0)
	for _, c := range b.Contexts {
		dst = binary.LittleEndian.AppendUint16(dst, c.ID)
		dst = append(dst, byte(len(c.Transfer)), 0)
		dst = appendSyntax(dst, c.Abstract)
		for _, t := range c.Transfer {
			dst = appendSyntax(dst, t)
		}
	}
	return finishPDU(dst, start)
}

// Presentation context results (p_cont_def_result_t).
const (
	resultAcceptance        = 0
	resultUserRejection     = 1
	resultProviderRejection = 2
	resultNegotiateAck      = 3
)

// Provider rejection reasons (p_provider_reason_t).
const (
	reasonNotSpecified               = 0
	reasonAbstractSyntaxNotSupported = 1
	reasonTransferSyntaxNotSupported = 2
	reasonLocalLimitExceeded         = 3
)

// result is one presentation context result in a bind_ack or
// alter_context_resp. For a negotiate_ack (BTFN) Reason carries the
// accepted feature bits.
type result struct {
	Result   uint16
	Reason   uint16
	Transfer SyntaxID
}

// bindAck is the body of a bind_ack or alter_context_resp PDU.
type bindAck struct {
	MaxXmitFrag uint16
	MaxRecvFrag uint16
	AssocGroup  uint32
	// SecAddr is the secondary address without its terminating NUL; empty
	// means sec_addr_len 0 (as in alter_context_resp).
	SecAddr string
	// Pad holds the bytes written to align after the secondary address. A
	// parsed PDU keeps what the peer sent; nil packs zeros.
	Pad     []byte
	Results []result
}

// maxSecAddr bounds the secondary address; a port number needs six bytes.
const maxSecAddr = 64

// parseBindAck decodes a bind_ack or alter_context_resp PDU (header included).
func parseBindAck(pdu []byte) (Header, bindAck, error) {
	var a bindAck
	h, err := checkPDU("bind_ack", pdu, PTypeBindAck, ptypeAlterContextResp)
	if err != nil {
		return h, a, err
	}
	r := reader{b: pdu, off: HeaderLen, what: h.Type.String()}
	a.MaxXmitFrag = r.u16("max_xmit_frag")
	a.MaxRecvFrag = r.u16("max_recv_frag")
	a.AssocGroup = r.u32("assoc_group_id")
	n := int(r.u16("sec_addr length"))
	if r.err == nil && n > maxSecAddr {
		r.fail(24, "sec_addr length %d exceeds %d", n, maxSecAddr)
	}
	addrOff := r.off
	addr := r.bytes(n, "sec_addr")
	if r.err == nil && n > 0 {
		if addr[n-1] != 0 {
			r.fail(addrOff+n-1, "sec_addr is not NUL-terminated")
		} else {
			a.SecAddr = string(addr[:n-1])
		}
	}
	padStart := r.off
	r.align(4, "sec_addr padding")
	if r.err == nil {
		a.Pad = pdu[padStart:r.off:r.off]
	}
	nr := int(r.u8("n_results"))
	r.skip(3, "n_results padding")
	if r.err == nil && nr > maxBindContexts {
		r.fail(r.off-4, "%d results, at most %d supported", nr, maxBindContexts)
	}
	if r.err == nil {
		a.Results = make([]result, 0, nr)
	}
	for i := 0; i < nr && r.err == nil; i++ {
		var res result
		res.Result = r.u16("result")
		res.Reason = r.u16("reason")
		res.Transfer = r.syntax("transfer_syntax")
		a.Results = append(a.Results, res)
	}
	r.end()
	if r.err != nil {
		return h, bindAck{}, r.err
	}
	return h, a, nil
}

// appendBindAck appends a bind_ack or alter_context_resp PDU (h.Type says
// which) and sets its frag_length.
func appendBindAck(dst []byte, h Header, a *bindAck) []byte {
	start := len(dst)
	dst = appendHeader(dst, h)
	dst = binary.LittleEndian.AppendUint16(dst, a.MaxXmitFrag)
	dst = binary.LittleEndian.AppendUint16(dst, a.MaxRecvFrag)
	dst = binary.LittleEndian.AppendUint32(dst, a.AssocGroup)
	if a.SecAddr == "" {
		dst = append(dst, 0, 0)
	} else {
		dst = binary.LittleEndian.AppendUint16(dst, uint16(len(a.SecAddr)+1))
		dst = append(dst, a.SecAddr...)
		dst = append(dst, 0)
	}
	padStart := len(dst)
	dst = padTo(dst, start, 4)
	copy(dst[padStart:], a.Pad)
	dst = append(dst, byte(len(a.Results)), 0, 0, 0)
	for _, res := range a.Results {
		dst = binary.LittleEndian.AppendUint16(dst, res.Result)
		dst = binary.LittleEndian.AppendUint16(dst, res.Reason)
		dst = appendSyntax(dst, res.Transfer)
	}
	return finishPDU(dst, start)
}

// Request is the body of a request PDU. Stub aliases the parsed buffer.
type Request struct {
	AllocHint uint32
	ContextID uint16
	Opnum     uint16
	// Object is set when the header has the object-UUID flag (0x80).
	Object guid.GUID
	Stub   []byte
}

// parseRequest decodes a request PDU (header included). The PDU must be a
// single fragment (FIRST|LAST both set).
func parseRequest(pdu []byte) (Header, Request, error) {
	var q Request
	h, err := checkPDU("request", pdu, PTypeRequest)
	if err != nil {
		return h, q, err
	}
	if h.Flags&(FlagFirstFrag|FlagLastFrag) != FlagFirstFrag|FlagLastFrag {
		return h, q, parseErr("request", 3, "flags 0x%02x: fragmented requests are not supported", h.Flags)
	}
	r := reader{b: pdu, off: HeaderLen, what: "request"}
	q.AllocHint = r.u32("alloc_hint")
	q.ContextID = r.u16("p_cont_id")
	q.Opnum = r.u16("opnum")
	if h.Flags&flagObjectUUID != 0 {
		q.Object = r.guid("object")
	}
	if r.err != nil {
		return h, Request{}, r.err
	}
	q.Stub = pdu[r.off:len(pdu):len(pdu)]
	return h, q, nil
}

// AppendRequest appends a request PDU and sets its frag_length. AllocHint is
// written as given; zero means len(Stub).
func AppendRequest(dst []byte, h Header, q *Request) []byte {
	start := len(dst)
	dst = appendHeader(dst, h)
	hint := q.AllocHint
	if hint == 0 {
		hint = uint32(len(q.Stub))
	}
	dst = binary.LittleEndian.AppendUint32(dst, hint)
	dst = binary.LittleEndian.AppendUint16(dst, q.ContextID)
	dst = binary.LittleEndian.AppendUint16(dst, q.Opnum)
	if h.Flags&flagObjectUUID != 0 {
		dst = append(dst, q.Object[:]...)
	}
	dst = append(dst, q.Stub...)
	return finishPDU(dst, start)
}

// response is the body of a response PDU. Stub aliases the parsed buffer.
type response struct {
	AllocHint   uint32
	ContextID   uint16
	CancelCount uint8
	Stub        []byte
}

// parseResponse decodes a response PDU (header included). The PDU must be a
// single fragment.
func parseResponse(pdu []byte) (Header, response, error) {
	var p response
	h, err := checkPDU("response", pdu, ptypeResponse)
	if err != nil {
		return h, p, err
	}
	if h.Flags&(FlagFirstFrag|FlagLastFrag) != FlagFirstFrag|FlagLastFrag {
		return h, p, parseErr("response", 3, "flags 0x%02x: fragmented responses are not supported", h.Flags)
	}
	r := reader{b: pdu, off: HeaderLen, what: "response"}
	p.AllocHint = r.u32("alloc_hint")
	p.ContextID = r.u16("p_cont_id")
	p.CancelCount = r.u8("cancel_count")
	r.skip(1, "reserved")
	if r.err != nil {
		return h, response{}, r.err
	}
	p.Stub = pdu[r.off:len(pdu):len(pdu)]
	return h, p, nil
}

// responseBodyLen is the length of a response PDU's fixed part after the
// header: alloc_hint, p_cont_id, cancel_count, reserved.
const responseBodyLen = 8

// appendResponse appends a response PDU carrying p.Stub and sets its
// frag_length. AllocHint is written as given; zero means len(Stub).
func appendResponse(dst []byte, h Header, p *response) []byte {
	start := len(dst)
	dst = appendHeader(dst, h)
	hint := p.AllocHint
	if hint == 0 {
		hint = uint32(len(p.Stub))
	}
	dst = binary.LittleEndian.AppendUint32(dst, hint)
	dst = binary.LittleEndian.AppendUint16(dst, p.ContextID)
	dst = append(dst, p.CancelCount, 0)
	dst = append(dst, p.Stub...)
	return finishPDU(dst, start)
}

// appendKMSResponse appends a complete response PDU for the KMS
// RequestActivation call: the NDR stub for payload and status in the given
// transfer syntax, with alloc_hint and frag_length set. It does not allocate
// when dst has room.
func appendKMSResponse(dst []byte, h Header, contextID uint16, syn Syntax, payload []byte, status uint32) []byte {
	start := len(dst)
	h.Type = ptypeResponse
	dst = appendHeader(dst, h)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.LittleEndian.AppendUint16(dst, contextID)
	dst = append(dst, 0, 0)
	stubStart := len(dst)
	dst = appendResponseStub(dst, syn, payload, status)
	binary.LittleEndian.PutUint32(dst[start+HeaderLen:], uint32(len(dst)-stubStart))
	return finishPDU(dst, start)
}

// Fault status codes sent by the server.
const (
	// ncaUnknownInterface (nca_unk_if) answers a request on a presentation
	// context that was never accepted.
	ncaUnknownInterface = 0x1c010003
	// ncaOpRangeError (nca_op_rng_error) answers an opnum other than 0.
	ncaOpRangeError = 0x1c010002
	// ncaProtoError (nca_proto_error) is a generic protocol error.
	ncaProtoError = 0x1c01000b
	// badStubData (RPC_X_BAD_STUB_DATA) answers a malformed NDR stub.
	badStubData = 0x000006f7
)

// fault is the body of a fault PDU.
type fault struct {
	AllocHint   uint32
	ContextID   uint16
	CancelCount uint8
	Status      uint32
}

// faultPDULen is the length of the fault PDUs this package writes.
const faultPDULen = 32

// parseFault decodes a fault PDU (header included). Any stub data after the
// status and reserved word is ignored.
func parseFault(pdu []byte) (Header, fault, error) {
	var f fault
	h, err := checkPDU("fault", pdu, ptypeFault)
	if err != nil {
		return h, f, err
	}
	r := reader{b: pdu, off: HeaderLen, what: "fault"}
	f.AllocHint = r.u32("alloc_hint")
	f.ContextID = r.u16("p_cont_id")
	f.CancelCount = r.u8("cancel_count")
	r.skip(1, "reserved")
	f.Status = r.u32("status")
	if r.err != nil {
		return h, fault{}, r.err
	}
	return h, f, nil
}

// appendFault appends a 32-byte fault PDU the way Windows and vlmcsd write
// it: flags FIRST|LAST|DID_NOT_EXECUTE, alloc_hint 32, the status and four
// reserved zero bytes. h supplies the call_id and data representation.
func appendFault(dst []byte, h Header, contextID uint16, status uint32) []byte {
	start := len(dst)
	h.Type = ptypeFault
	h.Flags = FlagFirstFrag | FlagLastFrag | flagDidNotExecute
	h.AuthLength = 0
	dst = appendHeader(dst, h)
	dst = binary.LittleEndian.AppendUint32(dst, faultPDULen)
	dst = binary.LittleEndian.AppendUint16(dst, contextID)
	dst = append(dst, 0, 0)
	dst = binary.LittleEndian.AppendUint32(dst, status)
	dst = append(dst, 0, 0, 0, 0)
	return finishPDU(dst, start)
}

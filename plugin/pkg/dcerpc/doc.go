// Package rpc implements the subset of connection-oriented DCE/RPC 5.0
// (ncacn_ip_tcp) that KMS activation uses, server and client side.
//
// A connection carries bind → bind_ack, optionally alter_context →
// alter_context_resp, then any number of request → response exchanges for
// the KMS interface's single operation, RequestActivation (opnum 0). Each
// PDU is one fragment, framed strictly by frag_length. The transfer
// syntaxes are NDR32 and NDR64; bind-time feature negotiation is answered.
// Negotiation follows a Windows 8+ KMS host: NDR32 is rejected in a bind
// that offers NDR64, NDR64 is accepted, and NDR32 is accepted in the
// alter_context the client then sends.
//
// The KMS message itself is opaque here: the Server passes the request bytes
// to a Handler and sends back its response bytes or HRESULT; the Client's
// Call does the reverse. Errors of the KMS layer travel as the call's return
// value in an ordinary response; fault PDUs are reserved for RPC-level
// problems such as a request on a context that was never accepted.
package dcerpc

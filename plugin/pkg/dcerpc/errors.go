package dcerpc

import (
	"errors"
	"fmt"
)

// ErrServerClosed is returned by Serve after Shutdown has been called.
var ErrServerClosed = errors.New("rpc: server closed")

// ErrNoSyntax is returned by Dial when the server accepted none of the
// offered transfer syntaxes for the KMS interface.
var ErrNoSyntax = errors.New("rpc: server accepted no transfer syntax for the KMS interface")

// ParseError describes malformed input: which PDU was being read, the byte
// offset (from the start of the PDU) where the problem was found, and what
// was wrong there.
type ParseError struct {
	// What names the structure being parsed, e.g. "header", "bind", "request stub".
	What string
	// Offset is the byte offset from the start of the PDU (or of the stub for
	// stub errors).
	Offset int
	// Reason says what was wrong.
	Reason string
}

// Error implements error.
func (e *ParseError) Error() string {
	return fmt.Sprintf("rpc: %s: offset %d: %s", e.What, e.Offset, e.Reason)
}

func parseErr(what string, off int, format string, args ...any) error {
	return &ParseError{What: what, Offset: off, Reason: fmt.Sprintf(format, args...)}
}

// FaultError is returned by Client.Call when the server answered with a
// fault PDU. Status is the DCE/RPC status code, e.g. 0x1C010003 (nca_unk_if).
type FaultError struct {
	Status uint32
}

// Error implements error.
func (e *FaultError) Error() string {
	name := ""
	switch e.Status {
	case ncaUnknownInterface:
		name = " (nca_unk_if)"
	case ncaOpRangeError:
		name = " (nca_op_rng_error)"
	case ncaProtoError:
		name = " (nca_proto_error)"
	case badStubData:
		name = " (rpc_x_bad_stub_data)"
	}
	return fmt.Sprintf("rpc: server sent fault 0x%08X%s", e.Status, name)
}

// UnexpectedPDUError is returned by the client when the server's answer has
// a PDU type other than the one expected.
type UnexpectedPDUError struct {
	Want, Got PType
}

// Error implements error.
func (e *UnexpectedPDUError) Error() string {
	return fmt.Sprintf("rpc: expected %v PDU, got %v", e.Want, e.Got)
}

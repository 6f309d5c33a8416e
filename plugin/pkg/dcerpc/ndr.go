package dcerpc

import (
	"encoding/binary"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
)

// SyntaxID names an interface (abstract syntax) or a transfer syntax. For
// an abstract syntax the version is major in the low 16 bits and minor in
// the high 16 bits, as on the wire.
type SyntaxID struct {
	UUID    guid.GUID
	Version uint32
}

// Well-known syntaxes.
var (
	// KMSInterface is the KMS activation interface, version 1.0; its only
	// operation is RequestActivation, opnum 0.
	KMSInterface = SyntaxID{guid.MustParse("51c82175-844e-4750-b0d8-ec255555bc06"), 1}
	// NDR32Syntax is the classic NDR transfer syntax, version 2.
	NDR32Syntax = SyntaxID{guid.MustParse("8a885d04-1ceb-11c9-9fe8-08002b104860"), 2}
	// ndr64Syntax is the 64-bit NDR transfer syntax, version 1.
	ndr64Syntax = SyntaxID{guid.MustParse("71710533-beba-4937-8319-b5dbef9ccc36"), 1}
)

// btfnPrefix is the first eight wire bytes of the bind-time feature
// negotiation pseudo-UUID 6cb71c2c-9812-4540-XXXX-000000000000; the
// feature bits sit in bytes 8-9 and bytes 10-15 are zero.
var btfnPrefix = [8]byte{0x2c, 0x1c, 0xb7, 0x6c, 0x12, 0x98, 0x40, 0x45}

// BTFN feature bits.
const (
	featureSecurityContextMultiplexing = 0x0001
	featureKeepConnectionOnOrphan      = 0x0002
)

// btfnSyntax returns the bind-time feature negotiation pseudo transfer
// syntax requesting the given feature bits.
func btfnSyntax(features uint16) SyntaxID {
	var s SyntaxID
	copy(s.UUID[:8], btfnPrefix[:])
	binary.LittleEndian.PutUint16(s.UUID[8:], features)
	s.Version = 1
	return s
}

// btfnFeatures reports whether s is a bind-time feature negotiation pseudo
// syntax and, if so, the feature bits it requests.
func btfnFeatures(s SyntaxID) (uint16, bool) {
	if [8]byte(s.UUID[:8]) != btfnPrefix || [6]byte(s.UUID[10:]) != [6]byte{} {
		return 0, false
	}
	return binary.LittleEndian.Uint16(s.UUID[8:]), true
}

// Syntax is a negotiated transfer syntax for the KMS call.
type Syntax uint8

// Transfer syntaxes.
const (
	// noSyntax means none negotiated.
	noSyntax Syntax = iota
	NDR32
	NDR64
)

// String returns "NDR32", "NDR64" or "none".
func (s Syntax) String() string {
	switch s {
	case NDR32:
		return "NDR32"
	case NDR64:
		return "NDR64"
	}
	return "none"
}

// ID returns the transfer syntax identifier of s.
func (s Syntax) ID() SyntaxID {
	switch s {
	case NDR32:
		return NDR32Syntax
	case NDR64:
		return ndr64Syntax
	}
	return SyntaxID{}
}

// referentID is the non-null referent that Windows and vlmcsd write for the
// response buffer pointer.
const referentID = 0x00020000

// maxStubTrailer is how many bytes of alignment padding are tolerated after
// the last field of a stub.
const maxStubTrailer = 7

// AppendRequestStub appends the NDR stub of RequestActivation's [in]
// parameters: the size (an int, padded to 8 bytes in NDR64), the array
// conformance (= size) and the bytes.
func AppendRequestStub(dst []byte, syn Syntax, payload []byte) []byte {
	n := uint32(len(payload))
	if syn == NDR64 {
		dst = binary.LittleEndian.AppendUint64(dst, uint64(n))
		dst = binary.LittleEndian.AppendUint64(dst, uint64(n))
	} else {
		dst = binary.LittleEndian.AppendUint32(dst, n)
		dst = binary.LittleEndian.AppendUint32(dst, n)
	}
	return append(dst, payload...)
}

// parseRequestStub decodes RequestActivation's [in] stub and returns the
// request bytes, which alias stub. The size must be non-negative and equal
// the conformance, the bytes must be present, and at most a few bytes of
// alignment padding may follow.
func parseRequestStub(syn Syntax, stub []byte) ([]byte, error) {
	r := reader{b: stub, what: "request stub"}
	var size, conf uint64
	if syn == NDR64 {
		size = uint64(r.u32("requestSize"))
		r.skip(4, "requestSize padding")
		conf = r.u64("conformance")
	} else {
		size = uint64(r.u32("requestSize"))
		conf = uint64(r.u32("conformance"))
	}
	if r.err != nil {
		return nil, r.err
	}
	if size > 0x7fffffff {
		return nil, parseErr("request stub", 0, "negative requestSize %d", int32(size))
	}
	if conf != size {
		return nil, parseErr("request stub", r.off-4, "conformance %d differs from requestSize %d", conf, size)
	}
	if size > uint64(len(stub)-r.off) {
		return nil, parseErr("request stub", r.off, "requestSize %d exceeds the %d bytes present", size, len(stub)-r.off)
	}
	payload := r.bytes(int(size), "request")
	if t := len(stub) - r.off; t > maxStubTrailer {
		return nil, parseErr("request stub", r.off, "%d unexpected trailing bytes", t)
	}
	return payload, nil
}

// appendResponseStub appends the NDR stub of RequestActivation's [out]
// parameters and return value. With status 0 it is the size, the referent
// 0x20000, the conformance, the bytes, padding to 4 and the u32 return
// value. With a non-zero status payload is ignored and the stub is size 0,
// a null referent and the status (12 bytes in NDR32, 20 in NDR64), as a KMS
// host reports an HRESULT.
func appendResponseStub(dst []byte, syn Syntax, payload []byte, status uint32) []byte {
	start := len(dst)
	if status != 0 {
		if syn == NDR64 {
			dst = append(dst, make([]byte, 16)...)
		} else {
			dst = append(dst, make([]byte, 8)...)
		}
		return binary.LittleEndian.AppendUint32(dst, status)
	}
	n := uint32(len(payload))
	if syn == NDR64 {
		dst = binary.LittleEndian.AppendUint64(dst, uint64(n))
		dst = binary.LittleEndian.AppendUint64(dst, referentID)
		dst = binary.LittleEndian.AppendUint64(dst, uint64(n))
	} else {
		dst = binary.LittleEndian.AppendUint32(dst, n)
		dst = binary.LittleEndian.AppendUint32(dst, referentID)
		dst = binary.LittleEndian.AppendUint32(dst, n)
	}
	dst = append(dst, payload...)
	dst = padTo(dst, start, 4)
	return binary.LittleEndian.AppendUint32(dst, 0)
}

// parseResponseStub decodes RequestActivation's [out] stub. A null referent
// means an error stub: the HRESULT follows and payload is nil. Otherwise the
// conformance must equal the size, the bytes must be present, and the
// return value follows after padding to 4. The payload aliases stub.
func parseResponseStub(syn Syntax, stub []byte) (payload []byte, status uint32, err error) {
	r := reader{b: stub, what: "response stub"}
	var size, ref, conf uint64
	if syn == NDR64 {
		size = uint64(r.u32("responseSize"))
		r.skip(4, "responseSize padding")
		ref = r.u64("referent")
	} else {
		size = uint64(r.u32("responseSize"))
		ref = uint64(r.u32("referent"))
	}
	if r.err != nil {
		return nil, 0, r.err
	}
	if ref != 0 {
		confOff := r.off
		if syn == NDR64 {
			conf = r.u64("conformance")
		} else {
			conf = uint64(r.u32("conformance"))
		}
		if r.err != nil {
			return nil, 0, r.err
		}
		if conf != size {
			return nil, 0, parseErr("response stub", confOff, "conformance %d differs from responseSize %d", conf, size)
		}
		if size > uint64(len(stub)-r.off) {
			return nil, 0, parseErr("response stub", r.off, "responseSize %d exceeds the %d bytes present", size, len(stub)-r.off)
		}
		payload = r.bytes(int(size), "response")
		r.align(4, "return value padding")
	}
	status = r.u32("return value")
	if r.err != nil {
		return nil, 0, r.err
	}
	if t := len(stub) - r.off; t > maxStubTrailer {
		return nil, 0, parseErr("response stub", r.off, "%d unexpected trailing bytes", t)
	}
	return payload, status, nil
}

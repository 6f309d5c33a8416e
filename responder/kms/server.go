package kms

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Wire sizes of the requests.
const (
	// RequestV4Size is the size of a V4 request: REQUEST and its MAC.
	RequestV4Size = RequestBodySize + 16
	// RequestV6Size is the size of a V5 or V6 request: version, IV and
	// the encrypted REQUEST with 4 bytes of padding.
	RequestV6Size = 4 + 16 + RequestBodySize + 4
	// MaxRequiredClientCount is the largest N_Policy a host accepts.
	MaxRequiredClientCount = 1000
)

// IncomingRequest is a request decoded by a host, with the state needed to
// answer it. It is not safe for concurrent use.
type IncomingRequest struct {
	// Request is the decoded request.
	Request Request

	major  uint16
	iv     [16]byte // V5/V6: the request IV
	divReq [16]byte // V5/V6: D(IV_req), the raw block decryption of the IV
	random [32]byte // scratch for randomness, kept here so it does not escape per call
}

// Version returns the protocol major version (4, 5 or 6).
func (in *IncomingRequest) Version() int { return int(in.major) }

// ParseRequest decodes a KMS request of protocol version 4.0, 5.0 or 6.0.
// It verifies the V4 MAC, decrypts V5/V6 and checks their PKCS#7 padding
// and inner version, and refuses N_Policy above MaxRequiredClientCount.
// Bytes beyond the version's request size are ignored. Every failure is a
// *RequestError that unwraps to ErrInvalidData.
func ParseRequest(b []byte) (*IncomingRequest, error) {
	if len(b) < 4 {
		return nil, invalidData("request of %d bytes is too short for its version field (4)", len(b))
	}
	minor := binary.LittleEndian.Uint16(b[0:])
	major := binary.LittleEndian.Uint16(b[2:])
	if minor != 0 || major < 4 || major > 6 {
		return nil, invalidData("unsupported protocol version %d.%d", major, minor)
	}
	in := &IncomingRequest{major: major}
	if major == 4 {
		if len(b) < RequestV4Size {
			return nil, invalidData("V4 request of %d bytes, want at least %d", len(b), RequestV4Size)
		}
		mac := macV4(b[:RequestBodySize])
		if subtle.ConstantTimeCompare(mac[:], b[RequestBodySize:RequestV4Size]) != 1 {
			return nil, invalidData("V4 request MAC at bytes %d..%d does not verify", RequestBodySize, RequestV4Size)
		}
		in.Request.parseBody(b)
	} else {
		if len(b) < RequestV6Size {
			return nil, invalidData("V%d request of %d bytes, want at least %d", major, len(b), RequestV6Size)
		}
		c := cipherFor(major)
		in.iv = [16]byte(b[4:20])
		c.decrypt(in.divReq[:], in.iv[:])
		var plain [RequestBodySize + 4]byte
		c.cbcDecrypt(&in.iv, plain[:], b[20:RequestV6Size])
		if n := pkcs7Len(plain[:]); n != RequestBodySize {
			return nil, invalidData("V%d request padding % x after decryption is not PKCS#7 04040404",
				major, [4]byte(plain[RequestBodySize:]))
		}
		in.Request.parseBody(plain[:])
		if in.Request.MinorVersion != 0 || in.Request.MajorVersion != major {
			return nil, invalidData("V%d request decrypts to version %d.%d", major,
				in.Request.MajorVersion, in.Request.MinorVersion)
		}
	}
	if n := in.Request.RequiredClientCount; n > MaxRequiredClientCount {
		return nil, invalidData("N_Policy %d exceeds %d", n, MaxRequiredClientCount)
	}
	return in, nil
}

// AppendResponse appends the wire encoding of resp, answering in, to dst
// and returns the extended slice.
//
// The version written is the request's when resp's version is 0.0, and
// ClientMachineID and ClientTime are echoed from the request when zero in
// resp; non-zero values are written as given. resp.HwID is used by V6 only.
//
// rand supplies the response randomness: V5 reads 16 bytes R (the client
// checks SHA-256(R)); V6 reads R and then 16 bytes P, the response IV being
// the V6 encryption of P. A deterministic rand gives deterministic bytes.
func (in *IncomingRequest) AppendResponse(dst []byte, resp *Response, rand io.Reader) ([]byte, error) {
	r := *resp
	if r.MinorVersion == 0 && r.MajorVersion == 0 {
		r.MinorVersion, r.MajorVersion = in.Request.MinorVersion, in.Request.MajorVersion
	}
	if r.ClientMachineID.IsNil() {
		r.ClientMachineID = in.Request.ClientMachineID
	}
	if r.ClientTime == 0 {
		r.ClientTime = in.Request.ClientTime
	}
	start := len(dst)
	switch in.major {
	case 4:
		out, err := r.appendBody(dst)
		if err != nil {
			return dst, err
		}
		mac := macV4(out[start:])
		return append(out, mac[:]...), nil
	case 5, 6:
		return in.appendEncrypted(dst, &r, rand)
	default:
		return dst, errors.New("kms: AppendResponse on an IncomingRequest not made by ParseRequest")
	}
}

// appendEncrypted appends a V5 or V6 response.
func (in *IncomingRequest) appendEncrypted(dst []byte, r *Response, rand io.Reader) ([]byte, error) {
	nrand := 16
	if in.major == 6 {
		nrand = 32
	}
	if _, err := io.ReadFull(rand, in.random[:nrand]); err != nil {
		return dst, fmt.Errorf("kms: reading response randomness: %w", err)
	}
	c := cipherFor(in.major)
	var iv, p [16]byte
	if in.major == 5 {
		iv = in.iv
	} else {
		p = [16]byte(in.random[16:32])
		c.encrypt(iv[:], p[:])
	}
	out := appendU16(dst, r.MinorVersion)
	out = appendU16(out, r.MajorVersion)
	out = append(out, iv[:]...)
	enc := len(out)
	out, err := r.appendBody(out)
	if err != nil {
		return dst, err
	}
	for i := range 16 {
		out = append(out, in.random[i]^in.divReq[i])
	}
	h := sha256.Sum256(in.random[:16])
	out = append(out, h[:]...)
	if in.major == 6 {
		out = append(out, r.HwID[:]...)
		out = append(out, in.divReq[:]...)
		mac := hmacV6(hmacKeyV6(r.ClientTime), &p, out[enc:])
		out = append(out, mac[:]...)
	}
	out = appendPKCS7(out, enc)
	c.cbcEncrypt(&iv, out[enc:])
	return out, nil
}

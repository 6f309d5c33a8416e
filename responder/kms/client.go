package kms

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
)

// Sizes of the authenticated trailers after the RESPONSE.
const (
	v5Trailer = 16 + 32                 // RandomXoredIVs, Hash
	v6Trailer = v5Trailer + 8 + 16 + 16 // + HwId, XoredIVs, HMAC
	// maxCipherResponse is the longest ciphertext of a valid V6 response.
	maxCipherResponse = (maxResponseBody+v6Trailer)/blockSize*blockSize + blockSize
)

// PendingRequest is the client-side state of a sent request, used to check
// its response.
type PendingRequest struct {
	minor, major uint16
	cmid         guid.GUID
	clientTime   uint64
	iv           [16]byte // V5/V6 request IV
	divReq       [16]byte // D(IV_req)
}

// BuildRequest encodes req as a client does: V4 as REQUEST plus its MAC,
// V5 and V6 as version, a random IV read from rand and the encrypted
// REQUEST. The wire format follows req.MajorVersion (4, 5 or 6);
// req.MinorVersion is sent as given so that hosts can be tested with odd
// versions.
func BuildRequest(req *Request, rand io.Reader) (wire []byte, pending *PendingRequest, err error) {
	p := &PendingRequest{
		minor:      req.MinorVersion,
		major:      req.MajorVersion,
		cmid:       req.ClientMachineID,
		clientTime: req.ClientTime,
	}
	switch req.MajorVersion {
	case 4:
		wire = make([]byte, 0, RequestV4Size)
		if wire, err = req.appendBody(wire); err != nil {
			return nil, nil, err
		}
		mac := macV4(wire)
		return append(wire, mac[:]...), p, nil
	case 5, 6:
		if _, err := io.ReadFull(rand, p.iv[:]); err != nil {
			return nil, nil, fmt.Errorf("kms: reading request IV: %w", err)
		}
		c := cipherFor(req.MajorVersion)
		c.decrypt(p.divReq[:], p.iv[:])
		wire = make([]byte, 0, RequestV6Size)
		wire = appendU16(wire, req.MinorVersion)
		wire = appendU16(wire, req.MajorVersion)
		wire = append(wire, p.iv[:]...)
		if wire, err = req.appendBody(wire); err != nil {
			return nil, nil, err
		}
		wire = appendPKCS7(wire, 20)
		c.cbcEncrypt(&p.iv, wire[20:])
		return wire, p, nil
	default:
		return nil, nil, fmt.Errorf("kms: cannot build a request of protocol version %d.%d (want 4, 5 or 6)",
			req.MajorVersion, req.MinorVersion)
	}
}

// ParseResponse decodes and verifies a host's response to p. It checks the
// size, the PKCS#7 padding (V5/V6), both version fields, the ePID size
// field, the echo of CMID and client time, and the cryptographic proof of
// the version: V4 MAC; V5 response IV equal to the request IV and hash;
// V6 hash, XoredIVs equal to D(IV_req) and the HMAC keyed by the echoed
// client time. Failures are *VerifyError.
func (p *PendingRequest) ParseResponse(b []byte) (*Response, error) {
	if len(b) < 4 {
		return nil, verifyErr("size", "response of %d bytes has no version field", len(b))
	}
	if minor, major := binary.LittleEndian.Uint16(b[0:]), binary.LittleEndian.Uint16(b[2:]); minor != p.minor || major != p.major {
		return nil, verifyErr("version", "response version %d.%d, request was %d.%d", major, minor, p.major, p.minor)
	}
	resp := new(Response)
	if p.major == 4 {
		n, err := resp.parseBody(b)
		if err != nil {
			return nil, err
		}
		if len(b) != n+16 {
			return nil, verifyErr("size", "V4 response of %d bytes, want %d (RESPONSE %d + MAC 16)", len(b), n+16, n)
		}
		mac := macV4(b[:n])
		if subtle.ConstantTimeCompare(mac[:], b[n:]) != 1 {
			return nil, verifyErr("mac", "V4 response MAC at bytes %d..%d does not verify", n, n+16)
		}
		if err := p.checkEcho(resp); err != nil {
			return nil, err
		}
		return resp, nil
	}
	return p.parseEncrypted(b, resp)
}

// parseEncrypted decodes a V5 or V6 response.
func (p *PendingRequest) parseEncrypted(b []byte, resp *Response) (*Response, error) {
	ct := len(b) - 20
	switch {
	case ct < blockSize || ct%blockSize != 0:
		return nil, verifyErr("size", "V%d response of %d bytes: ciphertext after the 20-byte header is not a positive multiple of 16",
			p.major, len(b))
	case ct > maxCipherResponse:
		return nil, verifyErr("size", "V%d response of %d bytes exceeds the largest valid response (%d)",
			p.major, len(b), 20+maxCipherResponse)
	}
	iv := [16]byte(b[4:20])
	if p.major == 5 && iv != p.iv {
		return nil, verifyErr("iv", "V5 response IV %x differs from the request IV %x", iv, p.iv)
	}
	c := cipherFor(p.major)
	var buf [maxCipherResponse]byte
	c.cbcDecrypt(&iv, buf[:ct], b[20:])
	n := pkcs7Len(buf[:ct])
	if n < 0 {
		return nil, verifyErr("padding", "decrypted V%d response does not end in valid PKCS#7 padding (last byte %#02x)",
			p.major, buf[ct-1])
	}
	plain := buf[:n]
	body, err := resp.parseBody(plain)
	if err != nil {
		return nil, err
	}
	if resp.MinorVersion != p.minor || resp.MajorVersion != p.major {
		return nil, verifyErr("version", "encrypted RESPONSE version %d.%d, request was %d.%d",
			resp.MajorVersion, resp.MinorVersion, p.major, p.minor)
	}
	trailer := v5Trailer
	if p.major == 6 {
		trailer = v6Trailer
	}
	if len(plain) != body+trailer {
		return nil, verifyErr("size", "V%d plaintext of %d bytes, want %d (RESPONSE %d + %d)",
			p.major, len(plain), body+trailer, body, trailer)
	}
	if err := p.checkEcho(resp); err != nil {
		return nil, err
	}
	t := plain[body:]
	var r [16]byte
	for i := range r {
		r[i] = t[i] ^ p.divReq[i]
	}
	if h := sha256.Sum256(r[:]); subtle.ConstantTimeCompare(h[:], t[16:48]) != 1 {
		return nil, verifyErr("hash", "SHA-256(RandomXoredIVs XOR D(IV_req)) does not match the response hash")
	}
	if p.major == 5 {
		return resp, nil
	}
	resp.HwID = [8]byte(t[48:56])
	if [16]byte(t[56:72]) != p.divReq {
		return nil, verifyErr("xored-ivs", "XoredIVs %x differ from D(IV_req) %x", [16]byte(t[56:72]), p.divReq)
	}
	var div [16]byte
	c.decrypt(div[:], iv[:])
	mac := hmacV6(hmacKeyV6(resp.ClientTime), &div, plain[:body+56+16])
	if subtle.ConstantTimeCompare(mac[:], t[72:88]) != 1 {
		return nil, verifyErr("hmac", "V6 HMAC (key from client time %d) does not verify", resp.ClientTime)
	}
	return resp, nil
}

// checkEcho verifies that the response echoes the request's CMID and time.
func (p *PendingRequest) checkEcho(resp *Response) error {
	if resp.ClientMachineID != p.cmid {
		return verifyErr("cmid", "response CMID %s, request CMID %s", resp.ClientMachineID, p.cmid)
	}
	if resp.ClientTime != p.clientTime {
		return verifyErr("client-time", "response client time %d, request time %d", resp.ClientTime, p.clientTime)
	}
	return nil
}

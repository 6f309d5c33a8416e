package kms

import (
	"encoding/binary"
	"fmt"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
)

// Sizes of the plain message bodies.
const (
	// RequestBodySize is the length of the REQUEST structure shared by
	// all protocol versions.
	RequestBodySize = 236
	// workstationUnits is the WorkstationName field size in UTF-16 units.
	workstationUnits = 64
	// maxEPIDUnits is the largest ePID in UTF-16 units, NUL included.
	maxEPIDUnits = 64
	// responseFixedSize is the RESPONSE length without the ePID.
	responseFixedSize = 4 + 4 + 16 + 8 + 4 + 4 + 4
	// maxResponseBody is the largest RESPONSE (an ePID of 64 units).
	maxResponseBody = responseFixedSize + 2*maxEPIDUnits
)

// Request is the decoded KMS activation request (the REQUEST structure).
type Request struct {
	// MinorVersion and MajorVersion give the protocol version: 4.0, 5.0 or 6.0.
	MinorVersion, MajorVersion uint16
	// VMInfo is 1 when the client runs in a virtual machine.
	VMInfo uint32
	// LicenseStatus is the client's state (0 unlicensed, 1 licensed,
	// 2 OOB grace, 3 OOT grace, 4 non-genuine grace, 5 notification,
	// 6 extended grace).
	LicenseStatus uint32
	// BindingExpiration is the minutes left in the current state.
	BindingExpiration uint32
	// ApplicationID names the application (Windows, Office 2010, Office).
	ApplicationID guid.GUID
	// SKUID is the edition's activation ID (informational).
	SKUID guid.GUID
	// KMSCountedID is the product group a host decides on.
	KMSCountedID guid.GUID
	// ClientMachineID (CMID) identifies the client machine.
	ClientMachineID guid.GUID
	// RequiredClientCount is N_Policy, the count the client needs.
	RequiredClientCount uint32
	// ClientTime is the client's clock as a FILETIME.
	ClientTime uint64
	// PreviousClientMachineID is the client's former CMID, usually zero.
	PreviousClientMachineID guid.GUID
	// WorkstationName is the client's name (at most 64 UTF-16 units).
	WorkstationName string
}

// Time returns ClientTime as a time.Time.
func (r *Request) Time() time.Time { return FileTimeToTime(r.ClientTime) }

// SetTime sets ClientTime from t.
func (r *Request) SetTime(t time.Time) { r.ClientTime = TimeToFileTime(t) }

// Response is the decoded KMS activation response (the RESPONSE structure
// and, for V6, the host's hardware ID).
type Response struct {
	// MinorVersion and MajorVersion echo the request's version.
	MinorVersion, MajorVersion uint16
	// EPID is the host's extended product ID (at most 63 characters).
	EPID string
	// ClientMachineID echoes the request's CMID.
	ClientMachineID guid.GUID
	// ClientTime echoes the request's FILETIME.
	ClientTime uint64
	// CurrentCount is the host's count of active clients.
	CurrentCount uint32
	// ActivationInterval is the retry interval in minutes.
	ActivationInterval uint32
	// RenewalInterval is the renewal interval in minutes.
	RenewalInterval uint32
	// HwID is the host's hardware ID, sent in V6 responses only.
	HwID [8]byte
}

// Time returns ClientTime as a time.Time.
func (r *Response) Time() time.Time { return FileTimeToTime(r.ClientTime) }

func appendU16(b []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(b, v) }
func appendU32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
func appendU64(b []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(b, v) }

// appendUTF16 appends s as UTF-16LE and returns the number of units.
func appendUTF16(b []byte, s string) ([]byte, int) {
	n := 0
	for _, r := range s {
		if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
			b = appendU16(b, uint16(r1))
			b = appendU16(b, uint16(r2))
			n += 2
			continue
		}
		b = appendU16(b, uint16(r))
		n++
	}
	return b, n
}

// utf16Units returns the number of UTF-16 units of s and whether s holds a
// NUL character.
func utf16Units(s string) (n int, hasNUL bool) {
	for _, r := range s {
		n += utf16.RuneLen(r)
		if r == 0 {
			hasNUL = true
		}
	}
	return n, hasNUL
}

// decodeUTF16 decodes UTF-16LE b up to its first NUL unit. Unpaired
// surrogates become U+FFFD.
func decodeUTF16(b []byte) string {
	var buf [3 * maxEPIDUnits * 2]byte
	out := buf[:0]
	for i := 0; i+1 < len(b); i += 2 {
		u := rune(binary.LittleEndian.Uint16(b[i:]))
		if u == 0 {
			break
		}
		if utf16.IsSurrogate(u) && i+3 < len(b) {
			if r := utf16.DecodeRune(u, rune(binary.LittleEndian.Uint16(b[i+2:]))); r != utf8.RuneError {
				out = utf8.AppendRune(out, r)
				i += 2
				continue
			}
		}
		if utf16.IsSurrogate(u) {
			u = utf8.RuneError
		}
		out = utf8.AppendRune(out, u)
	}
	return string(out)
}

// appendBody appends the 236-byte REQUEST encoding of r.
func (r *Request) appendBody(b []byte) ([]byte, error) {
	n, nul := utf16Units(r.WorkstationName)
	if n > workstationUnits || nul {
		return b, fmt.Errorf("kms: workstation name %q: %d UTF-16 units (NUL %v), want at most %d and no NUL",
			r.WorkstationName, n, nul, workstationUnits)
	}
	b = appendU16(b, r.MinorVersion)
	b = appendU16(b, r.MajorVersion)
	b = appendU32(b, r.VMInfo)
	b = appendU32(b, r.LicenseStatus)
	b = appendU32(b, r.BindingExpiration)
	b = append(b, r.ApplicationID[:]...)
	b = append(b, r.SKUID[:]...)
	b = append(b, r.KMSCountedID[:]...)
	b = append(b, r.ClientMachineID[:]...)
	b = appendU32(b, r.RequiredClientCount)
	b = appendU64(b, r.ClientTime)
	b = append(b, r.PreviousClientMachineID[:]...)
	b, n = appendUTF16(b, r.WorkstationName)
	for ; n < workstationUnits; n++ {
		b = appendU16(b, 0)
	}
	return b, nil
}

// parseBody decodes a REQUEST from the first RequestBodySize bytes of b,
// which the caller has checked to be long enough.
func (r *Request) parseBody(b []byte) {
	b = b[:RequestBodySize]
	r.MinorVersion = binary.LittleEndian.Uint16(b[0:])
	r.MajorVersion = binary.LittleEndian.Uint16(b[2:])
	r.VMInfo = binary.LittleEndian.Uint32(b[4:])
	r.LicenseStatus = binary.LittleEndian.Uint32(b[8:])
	r.BindingExpiration = binary.LittleEndian.Uint32(b[12:])
	r.ApplicationID = guid.GUID(b[16:32])
	r.SKUID = guid.GUID(b[32:48])
	r.KMSCountedID = guid.GUID(b[48:64])
	r.ClientMachineID = guid.GUID(b[64:80])
	r.RequiredClientCount = binary.LittleEndian.Uint32(b[80:])
	r.ClientTime = binary.LittleEndian.Uint64(b[84:])
	r.PreviousClientMachineID = guid.GUID(b[92:108])
	r.WorkstationName = decodeUTF16(b[108:236])
}

// appendBody appends the RESPONSE encoding of r (without HwID, which only
// V6 carries, after the hash).
func (r *Response) appendBody(b []byte) ([]byte, error) {
	n, nul := utf16Units(r.EPID)
	if n == 0 || n >= maxEPIDUnits || nul {
		return b, fmt.Errorf("kms: ePID %q: %d UTF-16 units (NUL %v), want 1..%d and no NUL",
			r.EPID, n, nul, maxEPIDUnits-1)
	}
	b = appendU16(b, r.MinorVersion)
	b = appendU16(b, r.MajorVersion)
	b = appendU32(b, uint32(2*(n+1)))
	b, _ = appendUTF16(b, r.EPID)
	b = appendU16(b, 0)
	b = append(b, r.ClientMachineID[:]...)
	b = appendU64(b, r.ClientTime)
	b = appendU32(b, r.CurrentCount)
	b = appendU32(b, r.ActivationInterval)
	b = appendU32(b, r.RenewalInterval)
	return b, nil
}

// parseBody decodes a RESPONSE at the start of b and returns its length.
// It checks the ePID's size field: even, 2..128 bytes, NUL-terminated, no
// NUL inside, and fitting in b.
func (r *Response) parseBody(b []byte) (int, error) {
	if len(b) < 8 {
		return 0, verifyErr("size", "%d bytes cannot hold the RESPONSE header (8)", len(b))
	}
	r.MinorVersion = binary.LittleEndian.Uint16(b[0:])
	r.MajorVersion = binary.LittleEndian.Uint16(b[2:])
	pidSize := binary.LittleEndian.Uint32(b[4:])
	switch {
	case pidSize%2 != 0:
		return 0, verifyErr("epid", "PIDSize %d is odd", pidSize)
	case pidSize < 4:
		return 0, verifyErr("epid", "PIDSize %d leaves no room for an ePID", pidSize)
	case pidSize > 2*maxEPIDUnits:
		return 0, verifyErr("epid", "PIDSize %d exceeds %d bytes", pidSize, 2*maxEPIDUnits)
	case uint64(responseFixedSize)+uint64(pidSize) > uint64(len(b)):
		return 0, verifyErr("size", "RESPONSE with PIDSize %d needs %d bytes, have %d",
			pidSize, responseFixedSize+int(pidSize), len(b))
	}
	ps := int(pidSize)
	pid := b[8 : 8+ps]
	if pid[ps-2] != 0 || pid[ps-1] != 0 {
		return 0, verifyErr("epid", "ePID of %d bytes is not NUL-terminated", ps)
	}
	for i := 0; i < ps-2; i += 2 {
		if pid[i] == 0 && pid[i+1] == 0 {
			return 0, verifyErr("epid", "ePID has a NUL at byte %d before its end (%d)", i, ps-2)
		}
	}
	r.EPID = decodeUTF16(pid)
	p := b[8+ps:]
	r.ClientMachineID = guid.GUID(p[0:16])
	r.ClientTime = binary.LittleEndian.Uint64(p[16:])
	r.CurrentCount = binary.LittleEndian.Uint32(p[24:])
	r.ActivationInterval = binary.LittleEndian.Uint32(p[28:])
	r.RenewalInterval = binary.LittleEndian.Uint32(p[32:])
	return responseFixedSize + ps, nil
}

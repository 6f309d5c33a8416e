package kms

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
)

// sampleRequest is a Windows 10 client's request like the transcripts'.
func sampleRequest(major uint16) *Request {
	return &Request{
		MajorVersion:        major,
		LicenseStatus:       2,
		BindingExpiration:   43200,
		ApplicationID:       guid.MustParse("55c92734-d682-4d71-983e-d6ec3f16059f"),
		SKUID:               guid.MustParse("73111121-5638-40f6-bc11-f1d7b0d64300"),
		KMSCountedID:        guid.MustParse("58e2134f-8e11-4d17-9cb2-91069c151148"),
		ClientMachineID:     guid.MustParse("01020304-0506-4708-890a-0b0c0d0e0f10"),
		RequiredClientCount: 25,
		ClientTime:          TimeToFileTime(time.Date(2026, 11, 22, 7, 53, 40, 0, time.UTC)),
		WorkstationName:     "test-client",
	}
}

// sampleResponse is a host's answer with the echoed fields left zero.
func sampleResponse() *Response {
	return &Response{
		EPID:               "03612-00206-555-926461-03-1088-14393.0000-0172022",
		CurrentCount:       50,
		ActivationInterval: 120,
		RenewalInterval:    10080,
		HwID:               [8]byte{0x3A, 0x1C, 0x04, 0x96, 0x00, 0xB6, 0x00, 0x76},
	}
}

// detRand is a deterministic randomness source for reproducible bytes.
func detRand(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	return rand.NewChaCha8(s)
}

// exchangeFor builds a request of the given version, parses it as a host
// would and returns both ends' state.
func exchangeFor(t testing.TB, major uint16) (*IncomingRequest, *PendingRequest, []byte) {
	t.Helper()
	wire, pending, err := BuildRequest(sampleRequest(major), detRand(uint64(major)))
	if err != nil {
		t.Fatal(err)
	}
	in, err := ParseRequest(wire)
	if err != nil {
		t.Fatal(err)
	}
	return in, pending, wire
}

// pendingFor rebuilds the client state matching a parsed request.
func pendingFor(in *IncomingRequest) *PendingRequest {
	return &PendingRequest{
		minor:      in.Request.MinorVersion,
		major:      in.Request.MajorVersion,
		cmid:       in.Request.ClientMachineID,
		clientTime: in.Request.ClientTime,
		iv:         in.iv,
		divReq:     in.divReq,
	}
}

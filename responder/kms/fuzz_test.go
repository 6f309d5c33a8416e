package kms

import (
	"errors"
	"testing"
)

// FuzzParseRequest feeds arbitrary bytes to the host's request decoder. An
// accepted request must be answerable, and the answer must pass the client
// verifier.
func FuzzParseRequest(f *testing.F) {
	for _, major := range []uint16{4, 5, 6} {
		_, _, wire := exchangeFor(f, major)
		f.Add(wire)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := ParseRequest(data)
		if err != nil {
			var h HRESULT
			if !errors.As(err, &h) || h != ErrInvalidData {
				t.Fatalf("error %v does not unwrap to ErrInvalidData", err)
			}
			return
		}
		if n := in.Request.RequiredClientCount; n > MaxRequiredClientCount {
			t.Fatalf("accepted N_Policy %d", n)
		}
		out, err := in.AppendResponse(nil, sampleResponse(), detRand(1))
		if err != nil {
			t.Fatalf("AppendResponse: %v", err)
		}
		resp, err := pendingFor(in).ParseResponse(out)
		if err != nil {
			t.Fatalf("own response does not verify: %v", err)
		}
		if resp.ClientMachineID != in.Request.ClientMachineID || resp.ClientTime != in.Request.ClientTime {
			t.Fatal("response does not echo CMID and time")
		}
	})
}

// FuzzParseResponse feeds arbitrary bytes to the client's response
// verifier, for a pending request chosen by sel among the transcripts'
// requests (V4, V5, V6, V6) and fresh V4/V5/V6 ones.
func FuzzParseResponse(f *testing.F) {
	var pendings []*PendingRequest
	for _, c := range loadVectors(f) {
		in, err := ParseRequest(c.ex.request)
		if err != nil {
			f.Fatal(err)
		}
		pendings = append(pendings, pendingFor(in))
		if c.ex.response != nil {
			f.Add(uint8(len(pendings)-1), c.ex.response)
		}
	}
	for _, major := range []uint16{4, 5, 6} {
		in, p, _ := exchangeFor(f, major)
		out, err := in.AppendResponse(nil, sampleResponse(), detRand(2))
		if err != nil {
			f.Fatal(err)
		}
		pendings = append(pendings, p)
		f.Add(uint8(len(pendings)-1), out)
	}
	f.Fuzz(func(t *testing.T, sel uint8, data []byte) {
		p := pendings[int(sel)%len(pendings)]
		resp, err := p.ParseResponse(data)
		if err != nil {
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("error %T %v is not a *VerifyError", err, err)
			}
			return
		}
		if resp.ClientMachineID != p.cmid || resp.ClientTime != p.clientTime ||
			resp.MajorVersion != p.major || resp.MinorVersion != p.minor {
			t.Fatalf("accepted a response that does not echo the request: %+v", resp)
		}
		if n := len(resp.EPID); n == 0 {
			t.Fatal("accepted an empty ePID")
		}
	})
}

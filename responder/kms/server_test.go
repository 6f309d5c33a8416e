package kms

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"testing/iotest"
)

// sealRequest encrypts an arbitrary V5/V6 request plaintext (already padded)
// with outer version major.
func sealRequest(major uint16, cipherMajor uint16, plain []byte) []byte {
	var iv [16]byte
	copy(iv[:], "0123456789abcdef")
	w := binary.LittleEndian.AppendUint32(nil, uint32(major)<<16)
	w = append(w, iv[:]...)
	ct := append([]byte(nil), plain...)
	cipherFor(cipherMajor).cbcEncrypt(&iv, ct)
	return append(w, ct...)
}

func TestParseRequestRejects(t *testing.T) {
	_, _, v4 := exchangeFor(t, 4)
	_, _, v5 := exchangeFor(t, 5)
	_, _, v6 := exchangeFor(t, 6)
	flip := func(b []byte, i int) []byte {
		c := append([]byte(nil), b...)
		c[i] ^= 0x01
		return c
	}
	body6, _ := sampleRequest(6).appendBody(nil)
	body5, _ := sampleRequest(5).appendBody(nil)
	nPolicy := func(major uint16, n uint32) []byte {
		r := sampleRequest(major)
		r.RequiredClientCount = n
		w, _, err := BuildRequest(r, detRand(9))
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	withVersion := func(b []byte, major, minor uint16) []byte {
		c := append([]byte(nil), b...)
		binary.LittleEndian.PutUint16(c[0:], minor)
		binary.LittleEndian.PutUint16(c[2:], major)
		return c
	}
	tests := []struct {
		name, in, want string
		b              []byte
	}{
		{name: "empty", want: "too short"},
		{name: "3 bytes", b: []byte{0, 0, 6}, want: "too short"},
		{name: "version 7.0", b: withVersion(v6, 7, 0), want: "unsupported protocol version 7.0"},
		{name: "version 6.1", b: withVersion(v6, 6, 1), want: "unsupported protocol version 6.1"},
		{name: "version 3.0", b: withVersion(v4, 3, 0), want: "unsupported protocol version 3.0"},
		{name: "V4 short", b: v4[:RequestV4Size-1], want: "V4 request of 251 bytes"},
		{name: "V4 bad MAC", b: flip(v4, RequestV4Size-1), want: "MAC"},
		{name: "V4 body tampered", b: flip(v4, 100), want: "MAC"},
		{name: "V5 short", b: v5[:RequestV6Size-1], want: "V5 request of 259 bytes"},
		{name: "V6 short", b: v6[:20], want: "V6 request of 20 bytes"},
		{name: "V6 bad padding", b: sealRequest(6, 6, append(body6, 5, 5, 5, 5)), want: "padding"},
		{name: "V5 zero padding", b: sealRequest(5, 5, append(body5, 0, 0, 0, 0)), want: "padding"},
		{name: "V6 under V5 key", b: sealRequest(6, 5, append(body6, 4, 4, 4, 4)), want: "padding"},
		{name: "V6 inner version 5", b: sealRequest(6, 6, append(body5, 4, 4, 4, 4)), want: "decrypts to version 5.0"},
		{name: "V4 N_Policy 1001", b: nPolicy(4, 1001), want: "N_Policy 1001"},
		{name: "V5 N_Policy 1001", b: nPolicy(5, 1001), want: "N_Policy 1001"},
		{name: "V6 N_Policy max", b: nPolicy(6, 0xFFFFFFFF), want: "N_Policy 4294967295"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in, err := ParseRequest(tc.b)
			if err == nil {
				t.Fatalf("ParseRequest accepted it: %+v", in.Request)
			}
			var h HRESULT
			if !errors.As(err, &h) || h != ErrInvalidData {
				t.Errorf("error %v does not unwrap to ErrInvalidData", err)
			}
			var re *RequestError
			if !errors.As(err, &re) {
				t.Errorf("error %T is not a *RequestError", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestParseRequestAccepts(t *testing.T) {
	for _, major := range []uint16{4, 5, 6} {
		r := sampleRequest(major)
		r.RequiredClientCount = MaxRequiredClientCount
		w, _, err := BuildRequest(r, detRand(1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseRequest(w); err != nil {
			t.Errorf("V%d N_Policy 1000: %v", major, err)
		}
		// Trailing bytes beyond the version's size are tolerated.
		long := append(w, bytes.Repeat([]byte{0xEE}, 40)...)
		in, err := ParseRequest(long)
		if err != nil {
			t.Fatalf("V%d with 40 trailing bytes: %v", major, err)
		}
		if in.Request != *r {
			t.Errorf("V%d with trailing bytes decoded to %+v", major, in.Request)
		}
	}
}

// TestRoundTrip runs client encoder, host decoder, host encoder and client
// verifier for each version and checks the wire sizes of the transcripts.
func TestRoundTrip(t *testing.T) {
	sizes := map[uint16][2]int{4: {252, 160}, 5: {260, 228}, 6: {260, 260}}
	for _, major := range []uint16{4, 5, 6} {
		req := sampleRequest(major)
		req.WorkstationName = "wörkstätion-𝔘nicode" // non-ASCII and a surrogate pair
		req.VMInfo = 1
		req.PreviousClientMachineID = [16]byte{9, 9, 9}
		wire, pending, err := BuildRequest(req, detRand(7))
		if err != nil {
			t.Fatal(err)
		}
		in, err := ParseRequest(wire)
		if err != nil {
			t.Fatalf("V%d: %v", major, err)
		}
		if in.Request != *req {
			t.Errorf("V%d request round trip:\n got %+v\nwant %+v", major, in.Request, *req)
		}
		out, err := in.AppendResponse(nil, sampleResponse(), detRand(8))
		if err != nil {
			t.Fatal(err)
		}
		if len(wire) != sizes[major][0] || len(out) != sizes[major][1] {
			t.Errorf("V%d sizes request %d response %d, want %v", major, len(wire), len(out), sizes[major])
		}
		resp, err := pending.ParseResponse(out)
		if err != nil {
			t.Fatalf("V%d ParseResponse: %v", major, err)
		}
		want := *sampleResponse()
		want.MajorVersion = major
		want.ClientMachineID = req.ClientMachineID
		want.ClientTime = req.ClientTime
		if major != 6 {
			want.HwID = [8]byte{}
		}
		if *resp != want {
			t.Errorf("V%d response round trip:\n got %+v\nwant %+v", major, *resp, want)
		}
		if major == 6 && bytes.Equal(out[4:20], wire[4:20]) {
			t.Error("V6 response reuses the request IV")
		}
		if major == 5 && !bytes.Equal(out[4:20], wire[4:20]) {
			t.Error("V5 response IV differs from the request IV")
		}
	}
}

func TestAppendResponseErrors(t *testing.T) {
	in6, _, _ := exchangeFor(t, 6)
	in4, _, _ := exchangeFor(t, 4)
	long := sampleResponse()
	long.EPID = strings.Repeat("1", 64)
	for _, tc := range []struct {
		name string
		in   *IncomingRequest
		resp *Response
		rnd  []byte
		want string
	}{
		{"V4 ePID too long", in4, long, nil, "ePID"},
		{"V6 ePID too long", in6, long, make([]byte, 32), "ePID"},
		{"V6 empty ePID", in6, &Response{}, make([]byte, 32), "ePID"},
		{"V6 ePID with NUL", in6, &Response{EPID: "a\x00b"}, make([]byte, 32), "ePID"},
		{"V6 short randomness", in6, sampleResponse(), make([]byte, 20), "randomness"},
		{"zero IncomingRequest", &IncomingRequest{}, sampleResponse(), nil, "not made by ParseRequest"},
	} {
		dst := []byte("keep")
		out, err := tc.in.AppendResponse(dst, tc.resp, bytes.NewReader(tc.rnd))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want mention of %q", tc.name, err, tc.want)
		}
		if string(out) != "keep" {
			t.Errorf("%s: dst changed to %q on error", tc.name, out)
		}
	}
	if _, err := in6.AppendResponse(nil, sampleResponse(), iotest.ErrReader(errors.New("boom"))); err == nil {
		t.Error("a failing rand was not reported")
	}
	// The longest ePID (63 units) is accepted and verifies.
	in, pending, _ := exchangeFor(t, 6)
	max := sampleResponse()
	max.EPID = strings.Repeat("7", 63)
	out, err := in.AppendResponse(nil, max, detRand(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pending.ParseResponse(out); err != nil {
		t.Errorf("63-unit ePID: %v", err)
	}
}

// TestHostAllocations pins the per-request allocations of the host path:
// the IncomingRequest and the workstation name string, nothing per block.
func TestHostAllocations(t *testing.T) {
	for _, major := range []uint16{4, 5, 6} {
		_, _, wire := exchangeFor(t, major)
		resp := sampleResponse()
		rnd := detRand(1)
		buf := make([]byte, 0, 512)
		allocs := testing.AllocsPerRun(50, func() {
			in, err := ParseRequest(wire)
			if err != nil {
				t.Fatal(err)
			}
			if buf, err = in.AppendResponse(buf[:0], resp, rnd); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > 2 {
			t.Errorf("V%d host request+response: %.0f allocations, want at most 2", major, allocs)
		}
	}
}

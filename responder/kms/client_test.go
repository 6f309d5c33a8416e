package kms

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/kmsdns/kmsdns/plugin/pkg/guid"
)

// openResponse decrypts a V5/V6 response and strips its padding.
func openResponse(t *testing.T, major uint16, wire []byte) []byte {
	t.Helper()
	iv := [16]byte(wire[4:20])
	plain := make([]byte, len(wire)-20)
	cipherFor(major).cbcDecrypt(&iv, plain, wire[20:])
	n := pkcs7Len(plain)
	if n < 0 {
		t.Fatal("bad padding in a response under test")
	}
	return plain[:n]
}

// sealResponse encrypts plain (padding added unless raw) under the header
// of wire.
func sealResponse(major uint16, wire, plain []byte, raw bool) []byte {
	iv := [16]byte(wire[4:20])
	out := append([]byte(nil), wire[:20]...)
	start := len(out)
	out = append(out, plain...)
	if !raw {
		out = appendPKCS7(out, start)
	}
	cipherFor(major).cbcEncrypt(&iv, out[start:])
	return out
}

func TestParseResponseRejects(t *testing.T) {
	type tc struct {
		name  string
		b     []byte
		field string
	}
	var tests []tc
	pendings := map[uint16]*PendingRequest{}
	good := map[uint16][]byte{}
	ins := map[uint16]*IncomingRequest{}
	for _, major := range []uint16{4, 5, 6} {
		in, p, _ := exchangeFor(t, major)
		pendings[major], ins[major] = p, in
		out, err := in.AppendResponse(nil, sampleResponse(), detRand(3))
		if err != nil {
			t.Fatal(err)
		}
		good[major] = out
	}
	mut := func(b []byte, f func([]byte)) []byte {
		c := append([]byte(nil), b...)
		f(c)
		return c
	}
	override := func(major uint16, f func(*Response)) []byte {
		r := sampleResponse()
		f(r)
		out, err := ins[major].AppendResponse(nil, r, detRand(3))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// V4 responses with a broken ePID size field and a valid MAC.
	v4Body := func(f func([]byte) []byte) []byte {
		body := f(append([]byte(nil), good[4][:len(good[4])-16]...))
		mac := macV4(body)
		return append(body, mac[:]...)
	}
	for _, major := range []uint16{4, 5, 6} {
		name := map[uint16]string{4: "V4 ", 5: "V5 ", 6: "V6 "}[major]
		tests = append(tests,
			tc{name + "empty", nil, "size"},
			tc{name + "3 bytes", good[major][:3], "size"},
			tc{name + "outer version", mut(good[major], func(b []byte) { b[2]++ }), "version"},
			tc{name + "outer minor", mut(good[major], func(b []byte) { b[0] = 1 }), "version"},
			tc{name + "truncated by 1", good[major][:len(good[major])-1], "size"},
			tc{name + "trailing byte", append(append([]byte(nil), good[major]...), 0), "size"},
			tc{name + "CMID not echoed", override(major, func(r *Response) { r.ClientMachineID = guid.GUID{1} }), "cmid"},
			tc{name + "time not echoed", override(major, func(r *Response) { r.ClientTime = 1 }), "client-time"},
		)
		if major != 4 {
			tests = append(tests,
				tc{name + "inner version", override(major, func(r *Response) { r.MajorVersion, r.MinorVersion = major, 1 }), "version"},
				tc{name + "oversized", append(append([]byte(nil), good[major]...), make([]byte, 320)...), "size"},
				tc{name + "header only", good[major][:20], "size"},
			)
		}
	}
	// V4 specifics.
	tests = append(tests,
		tc{"V4 MAC", mut(good[4], func(b []byte) { b[len(b)-1] ^= 1 }), "mac"},
		tc{"V4 count tampered", mut(good[4], func(b []byte) { b[len(b)-28] ^= 1 }), "mac"},
		tc{"V4 PIDSize odd", v4Body(func(b []byte) []byte { b[4] = 99; return b }), "epid"},
		tc{"V4 PIDSize 2", v4Body(func(b []byte) []byte { b[4] = 2; return b }), "epid"},
		tc{"V4 PIDSize 130", v4Body(func(b []byte) []byte { b[4] = 130; return b }), "epid"},
		tc{"V4 PIDSize huge", v4Body(func(b []byte) []byte { b[7] = 0x80; return b }), "epid"},
		tc{"V4 PIDSize beyond data", v4Body(func(b []byte) []byte { b[4] = 128; return b }), "size"},
		tc{"V4 ePID not terminated", v4Body(func(b []byte) []byte { b[8+98] = 'x'; return b }), "epid"},
		tc{"V4 ePID inner NUL", v4Body(func(b []byte) []byte { b[8+10] = 0; return b }), "epid"},
	)
	// V5/V6: tamper with the plaintext and re-seal it under the same IV.
	plain5 := openResponse(t, 5, good[5])
	plain6 := openResponse(t, 6, good[6])
	body := responseFixedSize + 100
	reseal := func(major uint16, plain []byte, f func([]byte) []byte) []byte {
		return sealResponse(major, good[major], f(append([]byte(nil), plain...)), false)
	}
	tests = append(tests,
		tc{"V5 IV differs", mut(good[5], func(b []byte) { b[4] ^= 1 }), "iv"},
		tc{"V5 hash", reseal(5, plain5, func(b []byte) []byte { b[body+20] ^= 1; return b }), "hash"},
		tc{"V5 RandomXoredIVs", reseal(5, plain5, func(b []byte) []byte { b[body] ^= 1; return b }), "hash"},
		tc{"V5 plaintext too long", reseal(5, plain5, func(b []byte) []byte { return append(b, 0) }), "size"},
		tc{"V5 plaintext too short", reseal(5, plain5, func(b []byte) []byte { return b[:len(b)-1] }), "size"},
		tc{"V5 no padding", sealResponse(5, good[5], append(append([]byte(nil), plain5...), make([]byte, 16)...), true), "padding"},
		tc{"V6 bad padding", sealResponse(6, good[6], append(append([]byte(nil), plain6...), 1, 2, 3, 4, 5, 6, 7, 8), true), "padding"},
		tc{"V6 hash", reseal(6, plain6, func(b []byte) []byte { b[body+16] ^= 1; return b }), "hash"},
		tc{"V6 XoredIVs", reseal(6, plain6, func(b []byte) []byte { b[body+56] ^= 1; return b }), "xored-ivs"},
		tc{"V6 HMAC", reseal(6, plain6, func(b []byte) []byte { b[body+72] ^= 1; return b }), "hmac"},
		tc{"V6 HwId", reseal(6, plain6, func(b []byte) []byte { b[body+48] ^= 1; return b }), "hmac"},
		tc{"V6 count", reseal(6, plain6, func(b []byte) []byte { b[body-12] ^= 1; return b }), "hmac"},
		tc{"V6 ePID", reseal(6, plain6, func(b []byte) []byte { b[10] ^= 1; return b }), "hmac"},
		tc{"V6 response IV", mut(good[6], func(b []byte) { b[19] ^= 1 }), ""},
		tc{"V6 under V5 key", func() []byte {
			c := sealResponse(5, good[6], plain6, false)
			return c
		}(), ""},
	)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			major := map[byte]uint16{'4': 4, '5': 5, '6': 6}[tc.name[1]]
			resp, err := pendings[major].ParseResponse(tc.b)
			if err == nil {
				t.Fatalf("accepted: %+v", resp)
			}
			if resp != nil {
				t.Errorf("a response came back with the error %v", err)
			}
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("error %T %v is not a *VerifyError", err, err)
			}
			if tc.field != "" && ve.Field != tc.field {
				t.Errorf("failed check %q (%v), want %q", ve.Field, err, tc.field)
			}
		})
	}
}

// TestParseResponseDetectsEveryChange flips each bit-0 of valid V4 and V6
// responses (whose every byte is authenticated) and truncates all three
// versions at every length; all must be rejected without panicking.
func TestParseResponseDetectsEveryChange(t *testing.T) {
	for _, major := range []uint16{4, 5, 6} {
		in, p, _ := exchangeFor(t, major)
		good, err := in.AppendResponse(nil, sampleResponse(), detRand(5))
		if err != nil {
			t.Fatal(err)
		}
		for i := range good {
			b := append([]byte(nil), good...)
			b[i] ^= 1
			if _, err := p.ParseResponse(b); err == nil && major != 5 {
				t.Errorf("V%d: flipping byte %d went unnoticed", major, i)
			}
		}
		for n := range len(good) {
			if _, err := p.ParseResponse(good[:n]); err == nil {
				t.Errorf("V%d: truncation to %d bytes accepted", major, n)
			}
		}
	}
}

func TestBuildRequestErrors(t *testing.T) {
	r := sampleRequest(7)
	if _, _, err := BuildRequest(r, detRand(1)); err == nil || !strings.Contains(err.Error(), "7.0") {
		t.Errorf("version 7: %v", err)
	}
	r = sampleRequest(6)
	r.WorkstationName = strings.Repeat("w", 65)
	if _, _, err := BuildRequest(r, detRand(1)); err == nil || !strings.Contains(err.Error(), "workstation") {
		t.Errorf("long workstation: %v", err)
	}
	r.WorkstationName = "a\x00b"
	if _, _, err := BuildRequest(r, detRand(1)); err == nil {
		t.Error("workstation with NUL accepted")
	}
	r.WorkstationName = "x"
	if _, _, err := BuildRequest(r, bytes.NewReader(make([]byte, 15))); err == nil {
		t.Error("short IV randomness accepted")
	}
	// A 64-unit name has no terminator and survives the round trip.
	r.WorkstationName = strings.Repeat("w", 64)
	wire, _, err := BuildRequest(r, detRand(1))
	if err != nil {
		t.Fatal(err)
	}
	in, err := ParseRequest(wire)
	if err != nil {
		t.Fatal(err)
	}
	if in.Request.WorkstationName != r.WorkstationName {
		t.Errorf("64-unit name decoded as %q", in.Request.WorkstationName)
	}
	// Odd minor versions are sent as given, for negative host tests.
	r = sampleRequest(6)
	r.MinorVersion = 1
	wire, _, err = BuildRequest(r, detRand(1))
	if err != nil {
		t.Fatal(err)
	}
	if v := binary.LittleEndian.Uint32(wire); v != 6<<16|1 {
		t.Errorf("version field %#x", v)
	}
}

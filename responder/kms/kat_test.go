package kms

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

// TestVectorsDecodeRequests decodes every transcript request and compares
// each field with decoded.txt.
func TestVectorsDecodeRequests(t *testing.T) {
	for _, c := range loadVectors(t) {
		t.Run(c.name, func(t *testing.T) {
			in, err := ParseRequest(c.ex.request)
			if err != nil {
				t.Fatalf("ParseRequest: %v", err)
			}
			r := &in.Request
			d := c.req
			got := map[string]string{
				"ver":             fmt.Sprintf("%d.%d", r.MajorVersion, r.MinorVersion),
				"vm":              fmt.Sprint(r.VMInfo),
				"license_status":  fmt.Sprint(r.LicenseStatus),
				"binding_exp_min": fmt.Sprint(r.BindingExpiration),
				"app":             r.ApplicationID.String(),
				"sku":             r.SKUID.String(),
				"kmsid":           r.KMSCountedID.String(),
				"cmid":            r.ClientMachineID.String(),
				"n_policy":        fmt.Sprint(r.RequiredClientCount),
				"client_time":     r.Time().Format("2006-01-02T15:04:05"),
				"client_time_raw": fmt.Sprint(r.ClientTime),
				"prev_cmid":       r.PreviousClientMachineID.String(),
				"workstation":     r.WorkstationName,
			}
			for k, v := range got {
				want, ok := d.fields[k]
				if !ok {
					t.Errorf("decoded.txt lacks request field %s", k)
				}
				if v != want {
					t.Errorf("request %s = %q, decoded.txt %q", k, v, want)
				}
			}
			if in.Version() != int(r.MajorVersion) {
				t.Errorf("Version() = %d, request major %d", in.Version(), r.MajorVersion)
			}
			if in.Version() != 4 {
				if iv := hex.EncodeToString(c.ex.request[4:20]); iv != d.iv {
					t.Errorf("request IV %s, decoded.txt %s", iv, d.iv)
				}
			}
		})
	}
}

// TestVectorsRebuildRequests re-creates every transcript request with the
// client encoder: V4 reproduces the MAC, V5/V6 the ciphertext given the IV.
func TestVectorsRebuildRequests(t *testing.T) {
	for _, c := range loadVectors(t) {
		t.Run(c.name, func(t *testing.T) {
			in, err := ParseRequest(c.ex.request)
			if err != nil {
				t.Fatal(err)
			}
			size := RequestV6Size
			var iv []byte
			if in.Version() == 4 {
				size = RequestV4Size
				mac := macV4(c.ex.request[:RequestBodySize])
				if !bytes.Equal(mac[:], c.ex.request[RequestBodySize:RequestV4Size]) {
					t.Errorf("V4 request MAC %x, transcript %x", mac, c.ex.request[RequestBodySize:])
				}
			} else {
				iv = c.ex.request[4:20]
			}
			if len(c.ex.request) != size {
				t.Fatalf("transcript request is %d bytes, want %d", len(c.ex.request), size)
			}
			wire, _, err := BuildRequest(&in.Request, bytes.NewReader(iv))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(wire, c.ex.request) {
				t.Errorf("BuildRequest:\n got %x\nwant %x", wire, c.ex.request)
			}
		})
	}
}

// TestVectorsVerifyAndReencryptResponses verifies every transcript response
// with the client decoder, compares it with decoded.txt, and has the host
// encoder reproduce its bytes from the recovered randomness.
func TestVectorsVerifyAndReencryptResponses(t *testing.T) {
	for _, c := range loadVectors(t) {
		t.Run(c.name, func(t *testing.T) {
			if c.resp == nil {
				if want := uint32(ErrKMSIDMismatch); c.ex.status != want {
					t.Fatalf("error stub status %#x, want %#x", c.ex.status, want)
				}
				return
			}
			if c.ex.status != 0 {
				t.Fatalf("success stub status %#x", c.ex.status)
			}
			in, err := ParseRequest(c.ex.request)
			if err != nil {
				t.Fatal(err)
			}
			var iv []byte
			if in.Version() != 4 {
				iv = c.ex.request[4:20]
			}
			_, pending, err := BuildRequest(&in.Request, bytes.NewReader(iv))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := pending.ParseResponse(c.ex.response)
			if err != nil {
				t.Fatalf("ParseResponse: %v", err)
			}
			d := *c.resp
			got := map[string]string{
				"ver":             fmt.Sprintf("%d.%d", resp.MajorVersion, resp.MinorVersion),
				"pid_size":        fmt.Sprint(2 * (len(resp.EPID) + 1)),
				"epid":            resp.EPID,
				"cmid":            resp.ClientMachineID.String(),
				"client_time":     resp.Time().Format("2006-01-02T15:04:05"),
				"client_time_raw": fmt.Sprint(resp.ClientTime),
				"count":           fmt.Sprint(resp.CurrentCount),
				"act_interval":    fmt.Sprint(resp.ActivationInterval),
				"renew_interval":  fmt.Sprint(resp.RenewalInterval),
			}
			for k, v := range got {
				if want := d.fields[k]; v != want {
					t.Errorf("response %s = %q, decoded.txt %q", k, v, want)
				}
			}
			if _, err := ParseEPID(resp.EPID); err != nil {
				t.Errorf("transcript ePID: %v", err)
			}
			if in.Version() == 6 {
				if h := strings.ToUpper(hex.EncodeToString(resp.HwID[:])); h != d.hwid {
					t.Errorf("HwID %s, decoded.txt %s", h, d.hwid)
				}
			}

			rnd := recoverRandomness(t, in, c.ex.response)
			prefix := []byte("prefix")
			out, err := in.AppendResponse(append([]byte(nil), prefix...), resp, bytes.NewReader(rnd))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(out, prefix) || !bytes.Equal(out[len(prefix):], c.ex.response) {
				t.Errorf("AppendResponse:\n got %x\nwant %x", out[len(prefix):], c.ex.response)
			}
			// The same with the echoed fields left for the encoder to fill.
			echo := *resp
			echo.MajorVersion, echo.MinorVersion, echo.ClientTime = 0, 0, 0
			echo.ClientMachineID = [16]byte{}
			out2, err := in.AppendResponse(nil, &echo, bytes.NewReader(rnd))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out2, c.ex.response) {
				t.Errorf("AppendResponse with echoed fields:\n got %x\nwant %x", out2, c.ex.response)
			}
		})
	}
}

// recoverRandomness extracts from a transcript response what the host drew
// at random: V5 R = RandomXoredIVs XOR D(IV_req); V6 R and P = D(IV_resp).
func recoverRandomness(t *testing.T, in *IncomingRequest, wire []byte) []byte {
	t.Helper()
	if in.Version() == 4 {
		return nil
	}
	c := cipherFor(uint16(in.Version()))
	iv := [16]byte(wire[4:20])
	plain := make([]byte, len(wire)-20)
	c.cbcDecrypt(&iv, plain, wire[20:])
	body := responseFixedSize + int(binary.LittleEndian.Uint32(plain[4:]))
	rnd := make([]byte, 16, 32)
	for i := range 16 {
		rnd[i] = plain[body+i] ^ in.divReq[i]
	}
	if in.Version() == 6 {
		var p [16]byte
		c.decrypt(p[:], iv[:])
		rnd = append(rnd, p[:]...)
	}
	return rnd
}

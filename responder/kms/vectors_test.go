package kms

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// pdu is one DCE/RPC PDU of a transcript.
type pdu struct {
	conn     int
	toServer bool
	raw      []byte
}

// readTranscript loads a testdata/vectors/*.hex file.
func readTranscript(t testing.TB, name string) []pdu {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "vectors", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []pdu
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	var cur *pdu
	var want int
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
		case strings.HasPrefix(line, "#"):
			var dir string
			if _, err := fmt.Sscanf(line, "# conn %d %s %d bytes", new(int), &dir, &want); err != nil {
				t.Fatalf("%s: bad header %q: %v", name, line, err)
			}
			var conn int
			fmt.Sscanf(line, "# conn %d", &conn)
			out = append(out, pdu{conn: conn, toServer: dir == "C->S"})
			cur = &out[len(out)-1]
		default:
			b, err := hex.DecodeString(line)
			if err != nil || cur == nil {
				t.Fatalf("%s: bad hex line: %v", name, err)
			}
			cur.raw = append(cur.raw, b...)
			if len(cur.raw) > want {
				t.Fatalf("%s: PDU longer than its header says (%d > %d)", name, len(cur.raw), want)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// exchange is one KMS request with its response payload (nil for an error
// stub) sliced from request/response PDUs.
type exchange struct {
	request, response []byte
	ndr64             bool
	status            uint32
}

// kmsExchanges slices the KMS payloads out of a transcript's request (PTYPE 0)
// and response (PTYPE 2) PDUs. It knows just enough NDR for the tests.
func kmsExchanges(t testing.TB, pdus []pdu) []exchange {
	t.Helper()
	var out []exchange
	for _, p := range pdus {
		b := p.raw
		if len(b) < 24 || int(binary.LittleEndian.Uint16(b[8:])) != len(b) {
			t.Fatalf("PDU of %d bytes has a bad header", len(b))
		}
		switch b[2] {
		case 0: // request: header, alloc_hint, ctx, opnum, stub
			n := int(binary.LittleEndian.Uint32(b[24:]))
			var e exchange
			switch {
			case 24+8+n == len(b):
				e.request = b[32:]
			case 24+16+n == len(b):
				e.request, e.ndr64 = b[40:], true
			default:
				t.Fatalf("request PDU of %d bytes with stub size %d is neither NDR32 nor NDR64", len(b), n)
			}
			out = append(out, e)
		case 2: // response
			if len(out) == 0 {
				t.Fatal("response before any request")
			}
			e := &out[len(out)-1]
			hdr, word := 12, 4
			if e.ndr64 {
				hdr, word = 24, 8
			}
			stub := b[24:]
			n := int(binary.LittleEndian.Uint32(stub))
			referent := binary.LittleEndian.Uint32(stub[word:])
			if referent == 0 {
				e.status = binary.LittleEndian.Uint32(stub[2*word:])
				continue
			}
			if hdr+n > len(stub) {
				t.Fatalf("response stub of %d bytes cannot hold %d", len(stub), n)
			}
			e.response = stub[hdr : hdr+n]
			e.status = binary.LittleEndian.Uint32(stub[hdr+(n+3)/4*4:])
		}
	}
	return out
}

// decodedRecord holds the fields of one "V? request/response {...}" line
// of decoded.txt plus the IVs and HwId printed on it.
type decodedRecord struct {
	kind   string // "request" or "response"
	fields map[string]string
	iv     string
	hwid   string
}

var (
	dictField = regexp.MustCompile(`'([a-z_]+)': ('[^']*'|[0-9]+)`)
	recordRe  = regexp.MustCompile(`^V[456] (request|response)\b`)
	ivRe      = regexp.MustCompile(`\b(?:IV|respIV)=([0-9a-f]{32})`)
	hwidRe    = regexp.MustCompile(`HwId=([0-9A-F]{16})`)
)

// readDecoded parses decoded.txt; the HwId line following a V6 response is
// attached to that response.
func readDecoded(t testing.TB) []decodedRecord {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "vectors", "decoded.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var out []decodedRecord
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if m := hwidRe.FindStringSubmatch(line); m != nil && len(out) > 0 {
			out[len(out)-1].hwid = m[1]
		}
		m := recordRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		r := decodedRecord{kind: m[1], fields: map[string]string{}}
		for _, f := range dictField.FindAllStringSubmatch(line, -1) {
			r.fields[f[1]] = strings.Trim(f[2], "'")
		}
		if iv := ivRe.FindStringSubmatch(line); iv != nil {
			r.iv = iv[1]
		}
		out = append(out, r)
	}
	return out
}

// vectorCase is one transcript exchange with its decoded.txt records.
type vectorCase struct {
	name string
	ex   exchange
	req  decodedRecord
	resp *decodedRecord
}

// loadVectors pairs the transcript exchanges with decoded.txt, in order.
func loadVectors(t testing.TB) []vectorCase {
	t.Helper()
	recs := readDecoded(t)
	var cases []vectorCase
	for _, file := range []string{"capture-ok.hex", "capture-error.hex"} {
		for _, ex := range kmsExchanges(t, readTranscript(t, file)) {
			if len(recs) == 0 || recs[0].kind != "request" {
				t.Fatalf("decoded.txt has no request record for exchange %d of %s", len(cases), file)
			}
			c := vectorCase{ex: ex, req: recs[0]}
			recs = recs[1:]
			if ex.response != nil {
				if len(recs) == 0 || recs[0].kind != "response" {
					t.Fatalf("decoded.txt has no response record for exchange %d of %s", len(cases), file)
				}
				c.resp = &recs[0]
				recs = recs[1:]
			}
			ndr := "NDR32"
			if ex.ndr64 {
				ndr = "NDR64"
			}
			c.name = fmt.Sprintf("%s/%d/V%s/%s", file, len(cases), c.req.fields["ver"], ndr)
			cases = append(cases, c)
		}
	}
	if len(recs) != 0 {
		t.Fatalf("decoded.txt has %d records without an exchange", len(recs))
	}
	if len(cases) != 5 {
		t.Fatalf("found %d KMS exchanges in the transcripts, want 5", len(cases))
	}
	return cases
}

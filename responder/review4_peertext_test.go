package main

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
)

// TestReview4CopyCSVBareQuoteThenLongInput: a line with one bare quote
// (a CSV error on that line) followed by more than maxPeerToken bytes of
// quote-free lines. The reference (encoding/csv on the stream) refuses it
// at line 1 with "bare \" in non-quoted-field"; copyCSV keeps gathering
// lines to balance the quote and refuses it as an oversized row instead.
func TestReview4CopyCSVBareQuoteThenLongInput(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("a,b\nx\"y,z\n")
	line := strings.Repeat("q", 100) + ",r\n"
	for b.Len() <= maxPeerToken+4096 {
		b.WriteString(line)
	}
	review4CheckCopyCSV(t, b.Bytes())
}

// TestReview4CopyCSVRecordJustOverBound: one quoted record a little over
// maxPeerToken bytes. The reference bounds the bytes read from the
// endpoint per record in 4 KiB reads; copyCSV bounds the record itself,
// so the two disagree on whether it is refused.
func TestReview4CopyCSVRecordJustOverBound(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("a,b\n\"")
	b.WriteString(strings.Repeat("x\n", (maxPeerToken-6)/2+8))
	b.WriteString("\",c\n")
	review4CheckCopyCSV(t, b.Bytes())
}

// review4CheckCopyCSV is checkCopyCSV reporting only the errors and the
// first difference, not the whole (large) input.
func review4CheckCopyCSV(t *testing.T, in []byte) {
	t.Helper()
	var got, want bytes.Buffer
	gerr := copyCSV(&got, bytes.NewReader(in))
	werr := oracleCopyCSV(&want, bytes.NewReader(in))
	if (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error() {
		t.Fatalf("error %v, want %v", gerr, werr)
	}
	if gerr == nil && !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("output differs: %d bytes, want %d", got.Len(), want.Len())
	}
}

// TestReview4CopyCSVFormulaFromAdmin: whoever answers on --admin chooses
// every byte of `clients --format csv`. copyCSV makes each field printable
// (and passes a plain line through as it is) but keeps a field that a
// spreadsheet reads as a formula: =, +, - or @ first, the CSV injection
// printable.CSVCell neutralizes in the server's own rows. A real
// kms-responder never writes such a field (CSVCell prefixes a quote), so
// the CLI can refuse the document or neutralize the field; today it
// writes the formula into the file the operator opens in a spreadsheet,
// on the pass-through path and the re-encoding path alike.
func TestReview4CopyCSVFormulaFromAdmin(t *testing.T) {
	for _, in := range []string{
		"cmid,workstation\nx,\"=HYPERLINK(\"\"http://evil/\"\")\"\n", // re-encoded (quotes)
		"cmid,workstation\nx,=cmd|' /C calc'!A0\n",                   // passed through
		"cmid,workstation\nx,@SUM(1+1)*cmd|' /C calc'!A0\n",
		"cmid,workstation\nx,+1+cmd|' /C calc'!A0\n",
	} {
		var out bytes.Buffer
		if err := copyCSV(&out, strings.NewReader(in)); err != nil {
			continue // refused: holds
		}
		recs, err := csv.NewReader(&out).ReadAll()
		if err != nil {
			t.Fatalf("%q: the output does not parse: %v", in, err)
		}
		for _, rec := range recs[1:] {
			for _, f := range rec {
				if f != "" && strings.ContainsRune("=+-@\t\r", rune(f[0])) {
					t.Errorf("%q: field %q of the CLI's CSV starts a formula", in, f)
				}
			}
		}
	}
}

package main

import (
	"bytes"
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

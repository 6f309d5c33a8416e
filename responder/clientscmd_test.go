package main

import (
	"encoding/base64"
	"io"
	"strings"
	"testing"

	"github.com/kmsdns/kmsdns/responder/ledger"
)

func TestCut(t *testing.T) {
	if got := cut("Windows 10/11 (Volume)", 20); got != "Windows 10/11 (Volu…" {
		t.Errorf("cut: %q", got)
	}
	if got := cut("Ünïcödé-name", 20); got != "Ünïcödé-name" {
		t.Errorf("cut short: %q", got)
	}
}

// TestListingRowBound: a listing whose row never ends (whatever answers at
// --admin) is an error after maxListingRow bytes, not unbounded memory.
func TestListingRowBound(t *testing.T) {
	huge := `{"clients": [{"workstation": "` + strings.Repeat("x", 3*maxListingRow)
	_, err := printClientTable(io.Discard, strings.NewReader(huge), false)
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err %v", err)
	}
	cursor := base64.RawURLEncoding.EncodeToString(make([]byte, ledger.CursorLen))
	ok := `{"clients": [` + strings.Repeat(`{"workstation": "pc"},`, 5000) + `{"workstation": "last"}], "next": "` + cursor + `"}`
	if next, err := printClientTable(io.Discard, strings.NewReader(ok), false); err != nil || next != cursor {
		t.Fatalf("5001 small rows: next %q err %v", next, err)
	}
}

// FuzzClientListing: the command reads GET /clients from whatever answers
// at --admin; a malformed or hostile document is an error, never a panic.
func FuzzClientListing(f *testing.F) {
	for _, s := range []string{`{"clients": [` + "\n" + `{"cmid":"x","workstation":"pc"}` + "\n" + `],` + "\n" + `"next": "abc"}`,
		`{"clients": []}`, `{"clients": [`, `[]`, `{"clients": [1,2]}`, `{"clients": [], "error": "boom"}`, `{"x":1}`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = printClientTable(io.Discard, strings.NewReader(string(b)), false)
		_, _ = printClientTable(io.Discard, strings.NewReader(string(b)), true)
	})
}

package guid

import (
	"encoding/hex"
	"strings"
	"testing"
)

func TestParseWireOrder(t *testing.T) {
	// The Windows application ID as it appears on the wire in the
	// reference transcripts (request bytes 16..31).
	g, err := Parse("55c92734-d682-4d71-983e-d6ec3f16059f")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(g[:]), "3427c95582d6714d983ed6ec3f16059f"; got != want {
		t.Fatalf("wire bytes = %s, want %s", got, want)
	}
	if got := g.String(); got != "55c92734-d682-4d71-983e-d6ec3f16059f" {
		t.Fatalf("String() = %s", got)
	}
}

func TestParseForms(t *testing.T) {
	tests := []struct {
		in      string
		wantErr bool
	}{
		{"55C92734-D682-4D71-983E-D6EC3F16059F", false},
		{"{55c92734-d682-4d71-983e-d6ec3f16059f}", false},
		{"55c92734d6824d71983ed6ec3f16059f", true},
		{"55c92734-d682-4d71-983e-d6ec3f16059", true},
		{"55c92734-d682-4d71-983e-d6ec3f16059g", true},
		{"", true},
	}
	for _, tc := range tests {
		_, err := Parse(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("Parse(%q) err = %v, wantErr %v", tc.in, err, tc.wantErr)
		}
	}
}

func TestTextRoundTrip(t *testing.T) {
	var g GUID
	if err := g.UnmarshalText([]byte("0FF1CE15-A989-479D-AF46-F275C6370663")); err != nil {
		t.Fatal(err)
	}
	b, _ := g.MarshalText()
	if !strings.EqualFold(string(b), "0ff1ce15-a989-479d-af46-f275c6370663") {
		t.Fatalf("round trip gave %s", b)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("55c92734-d682-4d71-983e-d6ec3f16059f")
	f.Add("{0ff1ce15-a989-479d-af46-f275c6370663}")
	f.Fuzz(func(t *testing.T, s string) {
		g, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(g.String())
		if err != nil || again != g {
			t.Fatalf("String/Parse not inverse for %q", s)
		}
	})
}

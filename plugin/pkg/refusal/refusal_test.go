package refusal

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/miekg/dns"

	"github.com/kmsdns/kmsdns/plugin/pkg/printable"
)

func TestEDERoundTrip(t *testing.T) {
	e := EDE(UnapprovedTarget, "kms9.example.test. is not approved")
	if e.InfoCode != dns.ExtendedErrorCodeProhibited || e.ExtraText != "unapproved-target: kms9.example.test. is not approved" {
		t.Fatalf("EDE = %+v", e)
	}
	if r := Reason(e.ExtraText); r != UnapprovedTarget {
		t.Errorf("Reason = %q", r)
	}
	if EDE(Format, "x").InfoCode != dns.ExtendedErrorCodeOther {
		t.Error("a format error is not Prohibited")
	}
	for _, text := range []string{"", "no colon", "made-up: x", strings.Repeat("a", 1000) + ": x"} {
		if r := Reason(text); r != Other {
			t.Errorf("Reason(%.20q) = %q, want other", text, r)
		}
	}
}

func FuzzClean(f *testing.F) {
	f.Add("unapproved-target: kms9\nforged log line")
	f.Add(strings.Repeat("é", 200))
	f.Add("unapproved-target: \u009b2J\u202eevil\u200b")
	f.Fuzz(func(t *testing.T, s string) {
		c := Clean(s)
		if len(c) > maxText+3 || !utf8.ValidString(c) || !printable.Valid(c) {
			t.Fatalf("Clean(%q) = %q", s, c)
		}
		_ = Reason(c)
	})
}

package dnsname

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestLabelsAndCanonical(t *testing.T) {
	tests := []struct {
		in        string
		labels    []string
		canonical string
		bad       bool
	}{
		{in: "KMS1.Corp.Test", labels: []string{"kms1", "corp", "test"}, canonical: "kms1.corp.test."},
		{in: "kms1.corp.test.", labels: []string{"kms1", "corp", "test"}, canonical: "kms1.corp.test."},
		{in: `\075ms1.corp.test.`, labels: []string{"kms1", "corp", "test"}, canonical: "kms1.corp.test."},
		{in: `evil\.kms.corp.test.`, labels: []string{"evil.kms", "corp", "test"}, canonical: `evil\.kms.corp.test.`},
		{in: `evil\046KMS.corp.test.`, labels: []string{"evil.kms", "corp", "test"}, canonical: `evil\.kms.corp.test.`},
		{in: `x\000y.test.`, labels: []string{"x\x00y", "test"}, canonical: `x\000y.test.`},
		{in: ".", labels: nil, canonical: "."},
		{in: "", labels: nil, canonical: "."},
		{in: "a..b.", bad: true},
		{in: strings.Repeat("a", 64) + ".test.", bad: true},
		{in: strings.Repeat("abcdefghi.", 26), bad: true},
		{in: strings.Repeat(`\000`, 2000), bad: true},
	}
	for _, tc := range tests {
		labels, err := Labels(tc.in)
		if (err != nil) != tc.bad {
			t.Errorf("Labels(%q) error %v, want bad=%v", tc.in, err, tc.bad)
			continue
		}
		c, cerr := Canonical(tc.in)
		if tc.bad {
			if cerr == nil {
				t.Errorf("Canonical(%q) = %q, want an error", tc.in, c)
			}
			continue
		}
		if !slices.Equal(labels, tc.labels) {
			t.Errorf("Labels(%q) = %q, want %q", tc.in, labels, tc.labels)
		}
		if cerr != nil || c != tc.canonical {
			t.Errorf("Canonical(%q) = %q, %v, want %q", tc.in, c, cerr, tc.canonical)
		}
	}
}

func TestCompare(t *testing.T) {
	tests := []struct {
		zone, name    string
		equal, in, bl bool
	}{
		{"corp.test.", "CORP.test", true, true, false},
		{"corp.test.", "kms.corp.test.", false, true, true},
		{"kms.corp.test.", `evil\.kms.corp.test.`, false, false, false},
		{"corp.test.", `evil\.kms.corp.test.`, false, true, true},
		{"corp.test.", "xcorp.test.", false, false, false},
		{"corp.test.", "test.", false, false, false},
		{".", "a.b.", false, true, true},
		{"a..", "a.", false, false, false},
		{"_tcp.corp.test.", `_vlmcs._TCP.corp.test.`, false, true, true},
		// A length octet that looks like a letter must not be case-folded: 'A' is 65.
		{strings.Repeat("x", 65-2) + ".t.", strings.Repeat("x", 65-2) + ".T.", true, true, false},
	}
	for _, tc := range tests {
		if got := Equal(tc.zone, tc.name); got != tc.equal {
			t.Errorf("Equal(%q, %q) = %v", tc.zone, tc.name, got)
		}
		if got := InZone(tc.zone, tc.name); got != tc.in {
			t.Errorf("InZone(%q, %q) = %v", tc.zone, tc.name, got)
		}
		if got := Below(tc.zone, tc.name); got != tc.bl {
			t.Errorf("Below(%q, %q) = %v", tc.zone, tc.name, got)
		}
	}
}

func TestTrimZone(t *testing.T) {
	tests := []struct{ zone, name, want string }{
		{"_tcp.corp.test.", "_vlmcs._tcp.corp.test.", "_vlmcs"},
		{"corp.test.", `a\.b.C.corp.TEST.`, `a\.b.C`},
		{"corp.test.", "corp.test.", ""},
		{".", "a.b.", "a.b"},
	}
	for _, tc := range tests {
		got, ok := TrimZone(tc.zone, tc.name)
		if !ok || got != tc.want {
			t.Errorf("TrimZone(%q, %q) = %q, %v, want %q", tc.zone, tc.name, got, ok, tc.want)
		}
	}
	if _, ok := TrimZone("kms.corp.test.", `evil\.kms.corp.test.`); ok {
		t.Error("TrimZone across an escaped dot succeeded")
	}
}

func TestHostName(t *testing.T) {
	good := []string{"kms1.corp.test", "KMS-1.corp.test.", "_vlmcs._tcp.corp.test.", "xn--bcher-kva.test.", `\107ms.test.`}
	bad := []string{".", "", `evil\.kms.corp.test.`, `a\032b.test.`, `a\000.test.`, `\200.test.`, "*.corp.test.", "a/b.test.", "a..b."}
	for _, n := range good {
		if _, err := HostName(n); err != nil {
			t.Errorf("HostName(%q): %v", n, err)
		}
	}
	for _, n := range bad {
		if c, err := HostName(n); err == nil {
			t.Errorf("HostName(%q) = %q, want an error", n, c)
		}
	}
}

func TestPattern(t *testing.T) {
	tests := []struct {
		pattern string
		match   []string
		miss    []string
	}{
		{"*.kms.corp.test", []string{"a.kms.corp.test.", "A.B.KMS.corp.test", `\097.kms.corp.test.`},
			[]string{"kms.corp.test.", `evil\.kms.corp.test.`, "xkms.corp.test.", `a\032b.kms.corp.test.`, "a..kms.corp.test."}},
		{"kms1.corp.test.", []string{"KMS1.corp.test", `kms\049.corp.test.`}, []string{"kms1.corp.test.x.", `kms1\.corp.test.`}},
	}
	for _, tc := range tests {
		p, err := ParsePattern(tc.pattern)
		if err != nil {
			t.Fatalf("ParsePattern(%q): %v", tc.pattern, err)
		}
		for _, n := range tc.match {
			if !p.Match(n) || !MatchAny([]Pattern{{}, p}, n) {
				t.Errorf("%s does not match %q", p, n)
			}
		}
		for _, n := range tc.miss {
			if p.Match(n) || MatchAny([]Pattern{p}, n) {
				t.Errorf("%s matches %q", p, n)
			}
		}
	}
	for _, s := range []string{"*", "*.", "**.a.", "a.*.b.", `a\.b.test`, "a b.test", "kms\x80.test", "*.a\\.b", "", "."} {
		if p, err := ParsePattern(s); err == nil {
			t.Errorf("ParsePattern(%q) = %s, want an error", s, p)
		}
	}
	if (Pattern{}).Match("a.test.") {
		t.Error("the zero Pattern matched")
	}
}

func TestVisible(t *testing.T) {
	for s, want := range map[string]bool{"kms.test.": true, "": true, "a b": false, `a\.b`: false, "a\x7f": false, "é": false, "\t": false} {
		if Visible(s) != want {
			t.Errorf("Visible(%q) = %v", s, !want)
		}
	}
}

func TestParsePrefix(t *testing.T) {
	tests := []struct{ in, want string }{
		{"10.0.0.5", "10.0.0.5/32"},
		{"10.0.0.5/24", "10.0.0.0/24"},
		{"::ffff:10.0.0.5", "10.0.0.5/32"},
		{"2001:db8::1/64", "2001:db8::/64"},
		{"::1", "::1/128"},
		{"::ffff:10.0.0.0/104", ""},
		{"fe80::1%eth0", ""},
		{"10.0.0.0/33", ""},
		{"10.0.0", ""},
		{"kms.test", ""},
		{"", ""},
	}
	for _, tc := range tests {
		p, err := ParsePrefix(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("ParsePrefix(%q) = %s, want an error", tc.in, p)
			}
			continue
		}
		if err != nil || p != netip.MustParsePrefix(tc.want) {
			t.Errorf("ParsePrefix(%q) = %s, %v, want %s", tc.in, p, err, tc.want)
		}
	}
}
